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


class WriteAtomicTest(tf.test.TestCase):

    def test_keys_keep_their_order_unless_sorted(self):
        # A report lists its arms in the order its reader expects (launch.downstream: raw A,
        # translated A, then B); only files kept in git ask for sorted keys.
        path = os.path.join(tempfile.mkdtemp(), "report.json")
        arms = {"raw A": 1, "translated A": 2, "B (upper bound)": 3}
        json_files.write_atomic({"results": arms}, path)
        self.assertEqual(list(json_files.read_object(path, "")["results"]), list(arms))
        json_files.write_atomic({"results": arms}, path, sort_keys=True)
        self.assertEqual(list(json_files.read_object(path, "")["results"]), sorted(arms))
        self.assertFalse(os.path.exists(path + ".partial"))

    def test_a_non_finite_number_is_named_and_nothing_is_written(self):
        path = os.path.join(tempfile.mkdtemp(), "report.json")
        with self.assertRaisesRegex(json_files.NonFiniteValue, r"metrics\.swd is nan"):
            json_files.write_atomic({"metrics": {"swd": float("nan")}}, path)
        self.assertFalse(os.path.exists(path))
