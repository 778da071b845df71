"""tfattncut.bulk.files: relative paths, output layout, atomic writes, stale temporaries."""
import os
import tempfile

import tensorflow as tf

from tfattncut.bulk import files


class PathsTest(tf.test.TestCase):

    def test_base_folder_is_the_pattern_up_to_the_last_slash_before_a_glob(self):
        for pattern, base in [("data/sim/**/*.png", "data/sim/"),
                              ("gs://bucket/x/img*.png", "gs://bucket/x/"),
                              ("/abs/a/b.png", "/abs/a/"), ("*.png", ""),
                              ("data/s?m/[ab]/x.png", "data/")]:
            self.assertEqual(files.base_folder(pattern), base, msg=pattern)

    def test_relative_key_drops_the_base_and_the_extension(self):
        self.assertEqual(files.relative_key("data/sim/a/b/x.1.png", "data/sim/"), "a/b/x.1")
        self.assertEqual(files.relative_key("gs://b/x/y.jpg", "gs://b/"), "x/y")
        self.assertEqual(files.relative_key("elsewhere/z.png", "data/"), "z")

    def test_local_paths_become_absolute_and_urls_stay(self):
        here = os.getcwd()
        self.assertEqual(files.local_absolute("data/./sim/../sim/**/*.png"),
                         os.path.join(here, "data", "sim", "**", "*.png"))
        self.assertEqual(files.local_absolute("out/"), os.path.join(here, "out"))
        self.assertEqual(files.local_absolute("gs://bucket/x/../y/*.png"),
                         "gs://bucket/x/../y/*.png")

    def test_layout_places_translations_and_label_maps(self):
        layout = files.Layout("in/**/*.png", "out/", "lab", "jpg")
        item = layout.item("in/a/b/x.png", "lab/a/b/x.bmp")
        self.assertEqual(item, files.Item("in/a/b/x.png", "a/b/x", "out/a/b/x.jpg",
                                          "lab/a/b/x.bmp", "out_labels/a/b/x.bmp"))
        self.assertEqual(layout.item("in/y.png").target, "out/y.jpg")
        self.assertIsNone(layout.item("in/y.png").label_target)
        self.assertEqual(layout.labels_pattern, "lab/**")
        self.assertEqual(layout.failed_path, "out/_failed.jsonl")
        self.assertTrue(layout.is_output("out/a/x.jpg"))
        self.assertTrue(layout.is_output("out_labels/x.png"))
        self.assertFalse(layout.is_output("output/x.png"))


class WritingTest(tf.test.TestCase):

    def test_atomic_write_replaces_the_file_and_leaves_no_temporary(self):
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "deep", "x.png")
        files.write_atomically(path, b"first")
        files.write_atomically(path, b"second")
        self.assertEqual(files.read(path), b"second")
        self.assertEqual(os.listdir(os.path.dirname(path)), ["x.png"])

    def test_remove_temporaries_deletes_only_temporaries_at_any_depth(self):
        folder = tempfile.mkdtemp()
        temporaries = [os.path.join(folder, ".x.png.bulk-tmp-" + "a" * 32),
                       os.path.join(folder, "d", "e", ".y.jpg.bulk-tmp-" + "0" * 32)]
        kept = [os.path.join(folder, "x.png"), os.path.join(folder, "d", "x.bulk-tmp-z.png"),
                os.path.join(folder, "d", ".x.bulk-tmp-" + "g" * 32)]
        for path in temporaries + kept:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "wb").close()
        removed = files.remove_temporaries([folder, os.path.join(folder, "missing")])
        self.assertEqual(removed, sorted(temporaries))
        self.assertEqual([os.path.exists(p) for p in temporaries + kept], [False] * 2 + [True] * 3)
