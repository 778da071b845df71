"""tfattncut.bulk.model_handler: version resolution; batches split by size, order kept,
bounded in pixels."""
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfattncut.bulk import model_handler
from tfattncut.serving.export import DEFAULT_SIGNATURE, INPUT, OUTPUT


class _Doubling:
    """A stand-in model: records the shapes it is called with; translation = pixels * 2."""

    def __init__(self):
        self.calls = []

    def translate(self, images):
        self.calls.append(images.shape)
        return images * 2


def write_saved_model_pb(folder, signature=DEFAULT_SIGNATURE):
    """FOLDER/saved_model.pb with one signature from INPUT to OUTPUT and no graph: all that
    resolve_model reads."""
    saved_model = saved_model_pb2.SavedModel()
    signature_def = saved_model.meta_graphs.add().signature_def[signature]
    signature_def.inputs[INPUT].name = "images:0"
    signature_def.outputs[OUTPUT].name = "translated:0"
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "saved_model.pb"), "wb") as f:
        f.write(saved_model.SerializeToString())


class ResolveModelTest(tf.test.TestCase):

    def test_a_model_folder_gives_its_newest_integer_version(self):
        root = tempfile.mkdtemp()
        for version in ("1", "10", "9", ".staging-11-1"):
            write_saved_model_pb(os.path.join(root, "m", version))
        self.assertEqual(model_handler.resolve_model(os.path.join(root, "m")),
                         os.path.join(root, "m", "10"))
        self.assertEqual(model_handler.resolve_model(os.path.join(root, "m", "9")),
                         os.path.join(root, "m", "9"))
        with self.assertRaisesRegex(FileNotFoundError, "--model=.*empty is neither"):
            model_handler.resolve_model(os.path.join(root, "empty"))

    def test_a_newest_version_without_saved_model_pb_is_named(self):
        root = tempfile.mkdtemp()
        write_saved_model_pb(os.path.join(root, "m", "1"))
        os.makedirs(os.path.join(root, "m", "2"))
        with self.assertRaisesRegex(FileNotFoundError, "--model=.*m: its newest version .*m/2 "
                                                       "has no saved_model.pb"):
            model_handler.resolve_model(os.path.join(root, "m"))

    def test_the_identity_tells_versions_and_graphs_apart(self):
        root = tempfile.mkdtemp()
        for version, signature in (("1", "a"), ("2", "a"), ("3", "b")):
            write_saved_model_pb(os.path.join(root, version), signature)
        one, two, three = (model_handler.model_identity(os.path.join(root, v))
                           for v in "123")
        self.assertEqual(one, model_handler.model_identity(os.path.join(root, "1")))
        self.assertEqual(one["saved_model_pb_sha256"], two["saved_model_pb_sha256"])
        self.assertNotEqual(one, two)
        self.assertNotEqual(two["saved_model_pb_sha256"], three["saved_model_pb_sha256"])

    def test_a_model_the_workers_could_not_call_is_refused_before_the_job(self):
        root = tempfile.mkdtemp()
        write_saved_model_pb(os.path.join(root, "classifier", "1"), signature="classify")
        with self.assertRaisesRegex(ValueError, "--model=.*classifier: .*classifier/1 has no "
                                                "'serving_default' signature from 'images' to "
                                                "'translated' \\(its signatures: \\['classify'\\]"):
            model_handler.resolve_model(os.path.join(root, "classifier"))
        broken = os.path.join(root, "broken")
        os.makedirs(broken)
        with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
            f.write(b"not a protocol buffer")
        with self.assertRaisesRegex(ValueError, "--model=.*broken: .*saved_model.pb is not a "
                                                "SavedModel"):
            model_handler.resolve_model(broken)


class SavedModelHandlerTest(tf.test.TestCase):

    def test_a_batch_runs_one_call_per_size_and_keeps_its_order(self):
        rng = np.random.default_rng(0)
        batch = [rng.integers(0, 100, shape, dtype=np.uint8)
                 for shape in [(8, 6, 3), (5, 5, 3), (8, 6, 3), (7, 9, 3), (5, 5, 3)]]
        model = _Doubling()
        handler = model_handler.SavedModelHandler("unused")
        results = handler.run_inference(batch, model)
        self.assertEqual(sorted(model.calls),
                         [(1, 7, 9, 3), (2, 5, 5, 3), (2, 8, 6, 3)])
        for image, result in zip(batch, results):
            self.assertIs(result.example, image)
            # Integer pixels doubled (< 200 in uint8): exact; batching only stacks and splits.
            self.assertAllEqual(result.inference, image * 2)
        self.assertEqual(handler.get_num_bytes(batch), sum(i.nbytes for i in batch))

    def test_batches_are_bounded_in_pixels_and_a_large_image_fits_alone(self):
        kwargs = model_handler.SavedModelHandler("unused", max_batch_pixels=100) \
            .batch_elements_kwargs()
        self.assertEqual((kwargs["min_batch_size"], kwargs["max_batch_size"]), (100, 100))
        size = kwargs["element_size_fn"]
        self.assertEqual(size(np.zeros((5, 6, 3))), 30)
        self.assertEqual(size(("key", np.zeros((5, 6, 3)))), 30)  # in a KeyedModelHandler
        self.assertEqual(size(np.zeros((50, 60, 3))), 100)

    def test_sharing_across_processes_is_an_option(self):
        self.assertFalse(model_handler.SavedModelHandler("m").share_model_across_processes())
        self.assertTrue(model_handler.SavedModelHandler(
            "m", share_across_processes=True).share_model_across_processes())
