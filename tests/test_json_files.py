"""json_files.read_object: the object, or one error naming the damaged file and the remedy."""
import os
import tempfile

import tensorflow as tf

from tfattncut import json_files


class ReadObjectTest(tf.test.TestCase):

    def test_an_object_is_returned_anything_else_is_named(self):
        path = os.path.join(tempfile.mkdtemp(), "config.json")
        with open(path, "w") as f:
            f.write('{"ngf": 8}')
        self.assertEqual(json_files.read_object(path, "unused"), {"ngf": 8})
        for text, why in (('{"ngf": 8', "is not valid JSON \\(Expecting"),
                          ("", "is not valid JSON"), ('["ngf"]', "holds a JSON list, not an "
                                                                  "object")):
            with open(path, "w") as f:
                f.write(text)
            with self.assertRaisesRegex(ValueError, f"^{path} {why}.*; rewrite it$"):
                json_files.read_object(path, "rewrite it")
