"""tfattncut.serving.export: signatures equal the Keras generator; layout, facts, configs."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.serving.servingdata import export_tiny_model, png_claiming
from tfattncut.checkpoints import make_checkpoint
from tfattncut.inference import translate
from tfattncut.serving import export as export_lib


def _expected_uint8(generator, pixels):
    """The Keras generator's translation of uint8 pixels, in uint8 (the oracle)."""
    images = tf.constant(pixels, tf.float32) / 127.5 - 1.0
    translated = translate(generator, images).numpy()
    return np.round((np.clip(translated, -1, 1) + 1) * 127.5).astype(np.uint8)


class ExportTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.export_dir, cls.path, cls.generator, cls.run_dir = export_tiny_model(cls.root)
        cls.loaded = tf.saved_model.load(cls.path)
        cls.rng = np.random.default_rng(0)

    def test_uint8_and_float_signatures_equal_the_generator_at_any_size(self):
        for shape in [(1, 16, 16, 3), (2, 13, 17, 3), (1, 5, 9, 3)]:
            pixels = self.rng.integers(0, 256, shape, dtype=np.uint8)
            out = self.loaded.signatures["serving_default"](
                images=tf.constant(pixels))[export_lib.OUTPUT].numpy()
            self.assertEqual(out.dtype, np.uint8)
            self.assertEqual(out.shape, shape)
            # Equal up to a rounding flip where a value lands on .5 in float32.
            diff = np.abs(out.astype(int) - _expected_uint8(self.generator, pixels))
            self.assertLessEqual(diff.max(), 1)
            self.assertLess(np.mean(diff), 0.01)
            images = tf.constant(pixels, tf.float32) / 127.5 - 1.0
            floats = self.loaded.signatures["translate_float"](images=images)[export_lib.OUTPUT]
            self.assertAllClose(floats, translate(self.generator, images), atol=1e-5)

    def test_encoded_signature_returns_pngs_of_the_translation(self):
        pixels = [self.rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                  for h, w in [(13, 17), (20, 8)]]
        files = [tf.io.encode_png(pixels[0]).numpy(), tf.io.encode_jpeg(pixels[1]).numpy()]
        out = self.loaded.signatures["translate_encoded"](image_bytes=tf.constant(files))
        pngs = out[export_lib.BYTES_OUTPUT].numpy()
        self.assertLen(pngs, 2)
        for png, original, contents in zip(pngs, pixels, files):
            self.assertTrue(png.startswith(b"\x89PNG"))
            decoded = tf.io.decode_png(png).numpy()
            self.assertEqual(decoded.shape, original.shape)
            source = tf.io.decode_image(contents).numpy() if contents[:2] != b"\xff\xd8" else \
                tf.io.decode_jpeg(contents, dct_method="INTEGER_ACCURATE").numpy()
            diff = np.abs(decoded.astype(int) - _expected_uint8(self.generator, source[None])[0])
            self.assertLessEqual(diff.max(), 1)

    def test_encoded_signature_refuses_images_over_the_pixel_limit_before_decoding(self):
        # A 69-byte PNG declaring 20000x20000: decoding it would allocate 1.2 GB first.
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"at most 67108864 pixels \(--max_image_pixels\)"):
            self.loaded.signatures["translate_encoded"](
                image_bytes=tf.constant([png_claiming(20000, 20000)]))
        module = export_lib.TranslatorModule(self.generator, max_image_pixels=10 * 10)
        pixels = self.rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
        self.assertLen(module.translate_encoded(
            tf.constant([tf.io.encode_png(pixels).numpy()]))[export_lib.BYTES_OUTPUT], 1)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "at most 100 pixels"):
            module.translate_encoded(tf.constant([tf.io.encode_png(pixels[:, :9]).numpy(),
                                                  tf.io.encode_png(
                                                      np.tile(pixels, [2, 1, 1])).numpy()]))

    def test_stale_staging_folders_of_dead_exports_are_removed(self):
        model_dir = tempfile.mkdtemp()
        finished = subprocess.Popen([sys.executable, "-c", "pass"])
        finished.wait()
        names = [f".staging-4-{finished.pid}", f".staging-5-{os.getpid()}", ".staging-6",
                 "3"]
        for name in names:
            os.makedirs(os.path.join(model_dir, name, "variables"))
        removed = export_lib.remove_stale_staging(model_dir)
        self.assertEqual(removed, [os.path.join(model_dir, names[0])])
        self.assertEqual(sorted(os.listdir(model_dir)), sorted(names[1:]))

    def test_too_small_images_name_the_minimum(self):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "at least 5x5"):
            self.loaded.signatures["serving_default"](images=tf.zeros([1, 4, 9, 3], tf.uint8))

    def test_layout_facts_and_tf_serving_configs(self):
        self.assertEqual(self.path, os.path.join(self.export_dir, "tiny", "1"))
        self.assertTrue(os.path.exists(os.path.join(self.path, "saved_model.pb")))
        with open(os.path.join(self.path, "assets.extra", export_lib.FACTS_FILE)) as f:
            facts = json.load(f)
        self.assertEqual(facts["method"], "cut")
        self.assertEqual(facts["selector"], "random")
        self.assertIsNone(facts["step"])  # write_tiny_run saves no step counter
        self.assertEqual(facts["crop_size"], 64)
        self.assertTrue(os.path.exists(facts["checkpoint"] + ".index"))
        self.assertEqual(facts["config"]["ngf"], 4)
        self.assertEqual(facts["max_image_pixels"], 64 << 20)
        config = model_server_config_pb2.ModelServerConfig()
        with open(os.path.join(self.export_dir, export_lib.MODELS_CONFIG)) as f:
            text_format.Parse(f.read(), config)
        entries = {e.name: e for e in config.model_config_list.config}
        self.assertEqual(entries["tiny"].base_path, "/models/tiny")
        self.assertEqual(entries["tiny"].model_platform, "tensorflow")
        with open(os.path.join(self.export_dir, export_lib.BATCHING_CONFIG)) as f:
            self.assertIn("max_batch_size { value: 16 }", f.read())

    def test_checkpoint_step_reads_the_trainers_counter(self):
        prefix = make_checkpoint(step=tf.Variable(7, dtype=tf.int64), generator=self.generator) \
            .save(os.path.join(tempfile.mkdtemp(), "ckpt"))
        self.assertEqual(export_lib.checkpoint_step(prefix), 7)

    def test_next_version_keeps_one_config_entry_and_refuses_overwrite(self):
        root = tempfile.mkdtemp()
        export_dir = os.path.join(root, "saved_models")
        os.makedirs(os.path.join(export_dir, "other", "7"))
        export_lib.update_models_config(export_dir, "other")
        self.assertEqual(export_lib.next_version(os.path.join(export_dir, "other")), 8)
        self.assertEqual(export_lib.next_version(os.path.join(export_dir, "missing")), 1)
        export_lib.update_models_config(export_dir, "tiny")
        export_lib.update_models_config(export_dir, "tiny")
        config = model_server_config_pb2.ModelServerConfig()
        with open(os.path.join(export_dir, export_lib.MODELS_CONFIG)) as f:
            text_format.Parse(f.read(), config)
        self.assertEqual([e.name for e in config.model_config_list.config], ["other", "tiny"])
        with self.assertRaisesRegex(FileExistsError, "immutable"):
            export_lib.export(self.run_dir, "tiny", self.export_dir, version=1)
        # A damaged models.config is refused before anything is exported.
        with open(os.path.join(export_dir, export_lib.MODELS_CONFIG), "w") as f:
            f.write("garbage {")
        with self.assertRaisesRegex(ValueError, "models.config is not a ModelServerConfig"):
            export_lib.export(self.run_dir, "new", export_dir)
        self.assertFalse(os.path.exists(os.path.join(export_dir, "new")))

    def test_warmup_file_holds_one_valid_request_per_signature(self):
        requests = export_lib.read_warmup_file(
            os.path.join(self.path, "assets.extra", export_lib.WARMUP_FILE))
        self.assertEqual([r.model_spec.signature_name for r in requests],
                         list(export_lib.SIGNATURES))
        for request in requests:
            signature = self.loaded.signatures[request.model_spec.signature_name]
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            self.assertEqual(set(inputs), set(signature.structured_input_signature[1]))
            outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
            self.assertEqual(next(iter(outputs.values())).shape[0], 1)
        pixels = tf.make_ndarray(requests[0].inputs[export_lib.INPUT])
        self.assertEqual(pixels.shape, (1, 64, 64, 3))
        self.assertEqual(pixels.dtype, np.uint8)
