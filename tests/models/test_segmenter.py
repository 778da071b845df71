"""The segmentation network of the downstream experiment and of semantic consistency: its
shape, seeded weights, and loading SavedModels of it."""
import os

import tensorflow as tf

from tfattncut.models.segmenter import build_segmenter, fit_segmenter, load_segmenter


class SegmenterTest(tf.test.TestCase):

    def test_network_shape_weights_and_seeded_init(self):
        width = 8
        model = build_segmenter(width=width, seed=3)
        self.assertEqual(model(tf.zeros([2, 16, 24, 3])).shape, [2, 16, 24, 19])
        # conv 3->w, conv w->2w, two conv 2w->2w (3x3, with biases), conv 1x1 3w->19.
        expected = ((9 * 3 + 1) * width + (9 * width + 1) * 2 * width
                    + 2 * (9 * 2 * width + 1) * 2 * width + (3 * width + 1) * 19)
        self.assertEqual(model.count_params(), expected)
        again = build_segmenter(width=width, seed=3)
        for a, b in zip(model.weights, again.weights):
            self.assertAllEqual(a, b)  # the same seeded draws: exact

    def test_epochs_of_steps_carry_on_through_a_dataset_that_holds_them_all(self):
        # Three epochs of two batches, one after the other in one dataset, as label-aware
        # training gives its S_A: the same updates as one pass over it, not the first
        # epoch's batches three times.
        images = tf.random.stateless_uniform([6, 2, 8, 8, 3], [1, 2], -1.0, 1.0)
        labels = tf.random.stateless_uniform([6, 2, 8, 8], [3, 4], 0, 19, tf.int32)
        epochs = tf.data.Dataset.from_tensor_slices((images, labels))

        def trained(dataset, epochs, steps_per_epoch=None):
            model = fit_segmenter(build_segmenter(width=4, seed=1), dataset, epochs,
                                  steps_per_epoch=steps_per_epoch)
            return [w.numpy() for w in model.weights]

        by_epoch = trained(epochs, 3, steps_per_epoch=2)
        for got, want in zip(by_epoch, trained(epochs, 1)):
            self.assertAllEqual(got, want)  # the same batches in the same order: exact
        self.assertNotAllClose(by_epoch[0], trained(epochs.take(2), 3)[0])

    def test_what_is_no_segmenter_saved_model_is_refused_naming_the_flag(self):
        # E.g. an exported translator, whose serving_default takes uint8 images.
        module = tf.Module()
        module.f = tf.function(lambda images: {"translated": images},
                               input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        path = os.path.join(self.get_temp_dir(), "translator")
        tf.saved_model.save(module, path, signatures={"serving_default": module.f})
        with self.assertRaisesRegex(ValueError, "--segmenter=.*translator: expected a "
                                                "serving_default signature from float32 images"
                                                ".*; its serving_default takes images uint8"):
            load_segmenter(path)
        with self.assertRaisesRegex(FileNotFoundError, "^--sem_segmenter=.*not a SavedModel"):
            load_segmenter(self.get_temp_dir(), "--sem_segmenter")
