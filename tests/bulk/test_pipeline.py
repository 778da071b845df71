"""tfattncut.bulk.pipeline on the DirectRunner (one in-process worker) with a tiny exported
model: the pixels of launch.translate, label maps, the dead-letter file, resuming a killed
run, and a rerun that writes nothing."""
import io
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.serving.servingdata import export_tiny_model, png_claiming
from tests.testdata import write_png
from tfattncut.bulk import pipeline
from tfattncut.bulk.files import FAILED_FILE, JOB_FILE, Layout
from tfattncut.bulk.model_handler import model_identity
from tfattncut.inference import load_translator
from tfattncut.translation import translate_images

# REL/STEM -> (height, width): two pairs share a size, so batches hold same-size images.
GOOD = {"a/im0": (32, 32), "a/im1": (32, 32), "a/b/im2": (48, 40), "a/b/im3": (48, 40),
        "a/b/im4": (37, 45), "c/im5": (40, 33), "c/im6": (44, 36), "c/d/e/im7": (32, 48),
        "c/d/e/im8": (45, 45), "c/d/im9": (36, 40)}
# What a killed run left: complete outputs (and their label maps) of these...
DONE = ("a/im0", "a/b/im3", "c/d/e/im8")
# ...the label map but not yet the translation of this one, and half-written temporaries.
LABEL_ONLY = "c/im5"


def _files(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def _mtimes(folder):
    """{path under the folder's parent: modification time}."""
    parent = os.path.dirname(folder)
    return {os.path.relpath(os.path.join(folder, path), parent):
            os.stat(os.path.join(folder, path)).st_mtime_ns for path in _files(folder)}


class BulkPipelineTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = root = tempfile.mkdtemp()
        exported = export_tiny_model(root)
        inputs, labels = os.path.join(root, "in"), os.path.join(root, "in_labels")
        rng = np.random.default_rng(0)
        for key, (height, width) in GOOD.items():
            folder, stem = os.path.split(key)
            write_png(os.path.join(inputs, folder), f"{stem}.png",
                      rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
            write_png(os.path.join(labels, folder), f"{stem}.png",
                      rng.integers(0, 20, (height, width, 3), dtype=np.uint8))
        cls.bad = {"a/corrupt.png": "cannot be decoded", "a/empty.png": "Input is empty",
                   "c/tiny.png": "is 3x3 pixels", "c/dup.png": "would all be translated",
                   "c/dup.jpg": "would all be translated",
                   "c/huge.png": "declares 20000x20000 pixels"}
        truncated = tf.io.encode_png(np.full((16, 16, 3), 99, np.uint8)).numpy()[:-30]
        for name, contents in (("corrupt", truncated), ("empty", b"")):
            with open(os.path.join(inputs, "a", f"{name}.png"), "wb") as f:
                f.write(contents)
        with open(os.path.join(inputs, "c", "huge.png"), "wb") as f:
            f.write(png_claiming(20000, 20000))
        write_png(os.path.join(inputs, "c"), "tiny.png", np.zeros((3, 3, 3), np.uint8))
        write_png(os.path.join(inputs, "c"), "dup.png", np.zeros((8, 8, 3), np.uint8))
        write_png(os.path.join(inputs, "c"), "dup.jpg", np.zeros((8, 8, 3), np.uint8))
        for name in ("corrupt", "empty", "tiny", "dup", "huge"):
            folder = "a" if name in ("corrupt", "empty") else "c"
            write_png(os.path.join(labels, folder), f"{name}.png", np.zeros((4, 4, 3), np.uint8))
        # No regular files: Beam's match passed over the links without a word, and reading
        # the FIFO would block for good.
        nowhere = "is a symbolic link that leads nowhere (dangling, or a loop)"
        cls.bad.update({"a/dangling.png": nowhere, "c/loop.png": nowhere,
                        "a/fifo.png": "is not a regular file"})
        os.symlink(os.path.join(inputs, "a", "gone.png"),
                   os.path.join(inputs, "a", "dangling.png"))
        os.symlink(os.path.join(inputs, "c", "loop.png"), os.path.join(inputs, "c", "loop.png"))
        os.mkfifo(os.path.join(inputs, "a", "fifo.png"))

        # The oracle: launch.translate's library function, with the run's Keras generator.
        translator, _ = load_translator(exported.run_dir)
        cls.reference = os.path.join(root, "reference")
        translate_images(translator, [os.path.join(inputs, f"{key}.png") for key in GOOD],
                         cls.reference)

        cls.output = os.path.join(root, "out")
        cls.labels_output = cls.output + "_labels"
        cls.layout = Layout(os.path.join(inputs, "**"), cls.output, labels)
        cls.model_path = exported.path
        pipeline.claim_output(cls.layout, model_identity(cls.model_path))
        for key in DONE:
            cls._copy(os.path.join(cls.reference, os.path.basename(key) + ".png"),
                      os.path.join(cls.output, key + ".png"))
            cls._copy(os.path.join(labels, key + ".png"),
                      os.path.join(cls.labels_output, key + ".png"))
        cls._copy(os.path.join(labels, LABEL_ONLY + ".png"),
                  os.path.join(cls.labels_output, LABEL_ONLY + ".png"))
        cls.leftovers = [os.path.join(cls.output, "c", "d", ".im9.png.bulk-tmp-" + "0" * 32),
                         os.path.join(cls.labels_output, "a", ".im1.png.bulk-tmp-" + "1" * 32)]
        for path in cls.leftovers:
            with open(path, "wb") as f:
                f.write(b"\x89PNG half")
        cls.before = _mtimes(cls.output)

        cls.progress = io.StringIO()
        cls.summary = pipeline.run(cls.model_path, cls.layout, pipeline.local_options(1),
                                   progress=cls.progress)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    @staticmethod
    def _copy(source, target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)

    def test_translations_equal_launch_translate_pixel_for_pixel(self):
        for key, (height, width) in GOOD.items():
            ours = np.asarray(Image.open(os.path.join(self.output, key + ".png")))
            theirs = np.asarray(Image.open(
                os.path.join(self.reference, os.path.basename(key) + ".png")))
            self.assertEqual(ours.shape, (height, width, 3))
            # The pipeline batches same-size images through the SavedModel, launch.translate
            # runs one at a time: other batch shapes may pick other oneDNN kernels, so a value
            # at a rounding boundary may land one level off.
            self.assertAllClose(ours.astype(np.int16), theirs.astype(np.int16), rtol=0, atol=1,
                                msg=key)

    def test_label_maps_are_copied_in_the_cyclegan_layout(self):
        for key in GOOD:
            with open(os.path.join(self.layout.labels, key + ".png"), "rb") as a, \
                    open(os.path.join(self.labels_output, key + ".png"), "rb") as b:
                self.assertEqual(a.read(), b.read(), msg=key)

    def test_bad_inputs_go_to_the_dead_letter_file_and_the_others_are_written(self):
        with open(os.path.join(self.output, FAILED_FILE)) as f:
            failed = [json.loads(line) for line in f]
        inputs = os.path.join(self.root, "in")
        self.assertEqual([f["path"] for f in failed],
                         sorted(os.path.join(inputs, name) for name in self.bad))
        for entry in failed:
            self.assertIn(self.bad[os.path.relpath(entry["path"], inputs)], entry["reason"])
        self.assertEqual(sorted(_files(self.output)),
                         sorted([FAILED_FILE, JOB_FILE] + [key + ".png" for key in GOOD]))
        self.assertEqual((self.summary.translated, self.summary.skipped, self.summary.failed),
                         (len(GOOD) - len(DONE), len(DONE), len(self.bad)))
        self.assertEqual(self.summary.latency_ms["count"], len(GOOD) - len(DONE))

    def test_progress_counts_the_inputs_that_have_their_translation(self):
        # 16 outputs planned: the 10 good inputs and the 7 bad files Beam matches (not the
        # links), of which dup.png and dup.jpg share one; the bad never get theirs, so the
        # count ends at 10.
        self.assertRegex(self.progress.getvalue().splitlines()[-1], rf"^image {len(GOOD)}/16\b")

    def test_a_killed_run_is_completed_without_partial_or_duplicate_files(self):
        for path in self.leftovers:
            self.assertFalse(os.path.exists(path))
        self.assertEqual(_files(self.labels_output), sorted(key + ".png" for key in GOOD))
        after = _mtimes(self.output)
        for key in DONE:
            self.assertEqual(after[f"out/{key}.png"], self.before[f"out/{key}.png"], msg=key)

    def test_a_narrower_rerun_keeps_the_failures_of_the_inputs_it_does_not_cover(self):
        with open(os.path.join(self.output, FAILED_FILE)) as f:
            before = f.read()
        inputs = os.path.join(self.root, "in")
        # Folder a/ only, with the same base folder (in/), so the same keys and outputs.
        narrower = Layout(os.path.join(inputs, "a*", "**"), self.output, self.layout.labels)
        summary = pipeline.run(self.model_path, narrower, pipeline.local_options(1))
        # Only a/'s corrupt.png, empty.png, dangling.png and fifo.png are retried (and fail
        # again); c/'s records stay.
        self.assertEqual(summary.failed, 4)
        with open(os.path.join(self.output, FAILED_FILE)) as f:
            self.assertEqual(f.read(), before)

    def test_a_rerun_writes_nothing_new(self):
        before = {**_mtimes(self.output), **_mtimes(self.labels_output)}
        summary = pipeline.run(self.model_path, self.layout, pipeline.local_options(1))
        self.assertEqual((summary.translated, summary.skipped, summary.failed),
                         (0, len(GOOD), len(self.bad)))
        after = {**_mtimes(self.output), **_mtimes(self.labels_output)}
        del before[f"out/{FAILED_FILE}"], after[f"out/{FAILED_FILE}"]  # the latest failures
        self.assertEqual(after, before)


class RequireInputTest(tf.test.TestCase):
    """What `run` refuses before it builds a pipeline."""

    def test_inputs_labels_and_output_folders_are_checked(self):
        root = tempfile.mkdtemp()
        write_png(os.path.join(root, "in"), "a.png", np.zeros([8, 8, 3], np.uint8))
        pipeline.require_input(Layout(f"{root}/in/*.png", f"{root}/out"))
        with self.assertRaisesRegex(FileNotFoundError, r"--input=.*/in/\*\.jpg matches no file"):
            pipeline.require_input(Layout(f"{root}/in/*.jpg", f"{root}/out"))
        with self.assertRaisesRegex(FileNotFoundError, f"--labels={root}/labels: no file in it"):
            pipeline.require_input(Layout(f"{root}/in/*.png", f"{root}/out", f"{root}/labels"))
        for output in (f"{root}/in", f"{root}", f"{root}/in/"):
            with self.assertRaisesRegex(ValueError, "a job never translates its own outputs"):
                pipeline.require_input(Layout(f"{root}/in/*.png", output))
        afile = os.path.join(root, "in", "a.png")
        for output in (afile, f"{afile}/below"):
            with self.assertRaisesRegex(NotADirectoryError, f"^--output={output}: {afile} "
                                                            "exists and is not a folder"):
                pipeline.require_input(Layout(f"{root}/in/*.png", output))

    def test_a_folder_as_input_is_refused_with_the_patterns_to_use(self):
        root = tempfile.mkdtemp()
        write_png(os.path.join(root, "in"), "a.png", np.zeros([8, 8, 3], np.uint8))
        with self.assertRaisesRegex(IsADirectoryError,
                                    rf"--input={root}/in is a folder.*'{root}/in/\*\.png'"
                                    rf".*'{root}/in/\*\*/\*\.png'"):
            pipeline.require_input(Layout(f"{root}/in", f"{root}/out"))


class ClaimOutputTest(tf.test.TestCase):
    """An --output holds only the outputs of one model."""

    MODEL = {"model": "/m/1", "saved_model_pb_sha256": "ab"}

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp()
        self.layout = Layout(f"{self.root}/in/*.png", f"{self.root}/out")

    def test_a_new_folder_is_claimed_and_resumed_by_the_same_model_only(self):
        pipeline.claim_output(self.layout, self.MODEL)
        with open(self.layout.job_path) as f:
            self.assertEqual(json.load(f), {"model": self.MODEL, "input": f"{self.root}/in/*.png"})
        write_png(self.layout.output, "x.png", np.zeros([8, 8, 3], np.uint8))
        pipeline.claim_output(self.layout, self.MODEL)
        other = {**self.MODEL, "saved_model_pb_sha256": "cd"}
        with self.assertRaisesRegex(ValueError, rf"--output={self.root}/out holds the outputs of "
                                                r"another model \(.*'ab'.*_job.json\), not of "
                                                r".*'cd'"):
            pipeline.claim_output(self.layout, other)

    def test_a_folder_of_other_files_is_refused_and_temporaries_do_not_count(self):
        os.makedirs(self.layout.output)
        with open(os.path.join(self.layout.output, ".x.png.bulk-tmp-" + "0" * 32), "wb") as f:
            f.write(b"half")
        pipeline.claim_output(self.layout, self.MODEL)
        for folder in (f"{self.root}/data", f"{self.root}/data2_labels"):
            write_png(folder, "x.png", np.zeros([8, 8, 3], np.uint8))
        for output in (f"{self.root}/data", f"{self.root}/data2"):
            with self.assertRaisesRegex(ValueError, rf"--output={output}: 1 file\(s\) there "
                                                    rf"that no bulk job wrote \({output}.*x.png"):
                pipeline.claim_output(Layout(self.layout.input_pattern, output), self.MODEL)
            self.assertFalse(os.path.exists(os.path.join(output, JOB_FILE)))

    def test_a_damaged_job_file_is_refused_naming_it(self):
        os.makedirs(self.layout.output)
        for damaged in (b"{\"model\": ", b"[1, 2]", b"{\"input\": \"x\"}", b"\xff\xfe"):
            with open(self.layout.job_path, "wb") as f:
                f.write(damaged)
            with self.assertRaisesRegex(ValueError, rf"{self.root}/out/_job.json is damaged "
                                                    r".*--output=.*/out: restore it"):
                pipeline.claim_output(self.layout, self.MODEL)
            with open(self.layout.job_path, "rb") as f:
                self.assertEqual(f.read(), damaged)  # left as it was

    def test_run_refuses_a_data_folder_before_the_pipeline(self):
        write_png(f"{self.root}/in", "x.png", np.zeros([8, 8, 3], np.uint8))
        write_png(f"{self.root}/data", "x.png", np.zeros([8, 8, 3], np.uint8))
        with self.assertRaisesRegex(ValueError, "no bulk job wrote"):
            pipeline.run("unused", Layout(self.layout.input_pattern, f"{self.root}/data"),
                         model=self.MODEL)
        self.assertEqual(os.listdir(f"{self.root}/data"), ["x.png"])


class PlanTest(tf.test.TestCase):
    """_Plan on one key, outside a pipeline."""

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp()
        self.layout = Layout(f"{self.root}/in/*.png", f"{self.root}/out", f"{self.root}/lab")
        for folder in ("in", "lab", "out"):
            write_png(f"{self.root}/{folder}", "x.png", np.full([8, 8, 3], 7, np.uint8))

    def _plan(self, labels):
        return list(pipeline._Plan(self.layout).process(  # pylint: disable=protected-access
            ("x", {"inputs": [f"{self.root}/in/x.png"], "labels": labels})))

    def test_a_translation_without_its_label_map_gets_it_copied(self):
        self.assertEqual(self._plan([f"{self.root}/lab/x.png"]), [])
        with open(f"{self.root}/lab/x.png", "rb") as a, \
                open(f"{self.root}/out_labels/x.png", "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_several_label_maps_for_one_input_are_a_failure_naming_them(self):
        with open(f"{self.root}/lab/x.json", "w") as f:
            f.write("{}")
        labels = [f"{self.root}/lab/x.json", f"{self.root}/lab/x.png"]
        [failure] = self._plan(labels[::-1])
        self.assertEqual(failure.value["path"], f"{self.root}/in/x.png")
        self.assertIn(f"several label maps for one input: {', '.join(labels)}",
                      failure.value["reason"])
        self.assertFalse(os.path.exists(f"{self.root}/out_labels"))


class InferenceFailuresTest(tf.test.TestCase):

    def test_a_failed_batch_lists_each_of_its_inputs(self):
        layout = Layout("in/**", "out")
        batch = [((layout.item(f"in/{name}.png"), 0.0), np.zeros((5, 5, 3), np.uint8))
                 for name in ("x", "y")]
        error = MemoryError("out of memory")
        failures = pipeline._inference_failures(  # pylint: disable=protected-access
            (batch, (type(error), repr(error), [])))
        self.assertEqual(failures, [
            {"path": f"in/{name}.png",
             "reason": "the model failed on its batch: MemoryError('out of memory')"}
            for name in ("x", "y")])


class KeptFailuresTest(tf.test.TestCase):
    """What a rerun keeps of the earlier dead-letter file."""

    def test_records_outside_the_input_and_lines_that_are_not_records_are_kept(self):
        root = tempfile.mkdtemp()
        layout = Layout(f"{root}/in/*.png", f"{root}/out")
        self.assertEqual(pipeline.kept_failures(layout), [])  # no earlier file
        records = [{"path": f"{root}/in/x.png", "reason": "r"},  # covered: retried
                   {"path": f"{root}/in/sub/y.png", "reason": "r"},  # '*' stops at '/'
                   {"path": f"{root}/other/z.png", "reason": "r"}]
        lines = [json.dumps(r) for r in records] + ["not json", "", '{"reason": "no path"}']
        os.makedirs(layout.output)
        with open(layout.failed_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.assertEqual(pipeline.kept_failures(layout),
                         [line + "\n" for line in lines[1:3] + ["not json",
                                                                '{"reason": "no path"}']])
