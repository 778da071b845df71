"""Output folders checked before any work: a file on the path, files that would be
replaced."""
import os
import tempfile

import tensorflow as tf

from tfattncut import errors, output_folders


class OutputFoldersTest(tf.test.TestCase):

    def test_a_file_on_the_path_is_named_and_folders_to_be_created_pass(self):
        root = tempfile.mkdtemp()
        afile = os.path.join(root, "afile")
        open(afile, "w").close()
        for path in (afile, os.path.join(afile, "below", "deeper")):
            with self.subTest(path=path), self.assertRaisesRegex(
                    NotADirectoryError,
                    f"^--output={path}: {afile} exists and is not a folder; name a folder"):
                output_folders.check_output_folder("--output", path)
        output_folders.check_output_folder("--output", os.path.join(root, "new", "deeper"))
        output_folders.check_output_folder("--output", root)
        self.assertEqual(os.listdir(root), ["afile"])  # nothing created

    def test_existing_targets_are_refused_unless_overwrite(self):
        root = tempfile.mkdtemp()
        targets = [os.path.join(root, name) for name in ("a.png", "b.png", "c.png")]
        for path in targets[:2]:
            open(path, "w").close()
        with self.assertRaisesRegex(errors.ExistingPath, f"^--output={root}: {targets[0]} "
                                                         "exists, and 1 more files this would "
                                                         "replace; pass --overwrite"):
            output_folders.check_not_replacing("--output", root, targets, overwrite=False)
        output_folders.check_not_replacing("--output", root, targets, overwrite=True)
        output_folders.check_not_replacing("--output", root, targets[2:], overwrite=False)
