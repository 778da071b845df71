"""The image pool: the reference's semantics, exact resume, one pool shared by replicas."""
import os
import tempfile

import numpy as np
import tensorflow as tf

from tfattncut.methods.image_pool import ImagePool, pool_exchange


def reference_pool(size, images, draw, stored=()):
    """The reference ImagePool.query in NumPy, one image after another, from the pool
    `stored`; `draw(i)` gives image i's (uniform in [0, 1), slot) -- the random choices,
    supplied from outside. Returns (returned, stored)."""
    stored, returned = list(stored), []
    for i, image in enumerate(images):
        if len(stored) < size:
            stored.append(image)
            returned.append(image)
            continue
        p, slot = draw(i)
        if p > 0.5:
            returned.append(stored[slot])
            stored[slot] = image
        else:
            returned.append(image)
    return np.stack(returned), np.stack(stored)


def tf_draws(seed, count, size):
    """Image i's (p, slot) from the bits pool_exchange draws for `count` images."""
    bits = tf.random.stateless_uniform([count, 2], seed, minval=None, maxval=None,
                                       dtype=tf.int32, alg="philox").numpy()
    return lambda i: (1.0 if bits[i, 0] < 0 else 0.0, int(bits[i, 1]) % size)


def distinct_images(count, offset=0):
    """[count, 1, 1, 1] images that are their own index: easy to trace."""
    return np.arange(offset, offset + count, dtype=np.float32).reshape(count, 1, 1, 1)


def query_and_store(pool, images, seed):
    """One pool query whose new state is written (a step whose D update was not skipped)."""
    returned, state = pool.query(images, seed)
    pool.store(state)
    return returned


def _bump_collective_keys():
    tf.distribute.MirroredStrategy._collective_key_base += 100_000


class PoolTest(tf.test.TestCase):
    """The pool only copies images, so its outputs are compared exactly."""

    def test_first_fifty_pass_then_half_are_swapped(self):
        seed = tf.constant([3, 7])
        images = distinct_images(250)
        returned, stored, count = pool_exchange(tf.zeros([50, 1, 1, 1]), tf.constant(0),
                                                tf.constant(images), seed)
        self.assertAllEqual(returned[:50], images[:50])
        self.assertEqual(int(count), 50)
        want_returned, want_stored = reference_pool(50, images, tf_draws(seed, 250, 50))
        self.assertAllEqual(returned, want_returned)
        self.assertAllEqual(stored, want_stored)
        # After the fill, about half of the 200 later images are answered from the pool
        # (binomial(200, ½): 100 ± 7; 70..130 is 4 standard deviations).
        swapped = int(np.sum(returned.numpy()[50:] != images[50:]))
        self.assertBetween(swapped, 70, 130)
        # A swapped-out image is an earlier one; a kept image went into the pool.
        earlier = returned.numpy()[50:].ravel() < images[50:].ravel()
        self.assertEqual(int(earlier.sum()), swapped)

    def test_query_keeps_state_across_calls_and_size_zero_passes_through(self):
        pool = ImagePool(4, [1, 1, 1])
        seed = tf.constant([1, 2])
        first = query_and_store(pool, tf.constant(distinct_images(3)), seed)
        self.assertAllEqual(first, distinct_images(3))
        self.assertEqual(int(pool.count), 3)
        second = query_and_store(pool, tf.constant(distinct_images(3, offset=3)), seed)
        want_returned, want_stored = reference_pool(
            4, distinct_images(3, offset=3), tf_draws(seed, 3, 4), stored=distinct_images(3))
        self.assertAllEqual(second, want_returned)
        self.assertAllEqual(pool.images, want_stored)
        self.assertEqual(int(pool.count), 4)
        empty = ImagePool(0, [1, 1, 1])
        images = tf.constant(distinct_images(2))
        self.assertIs(query_and_store(empty, images, seed), images)
        self.assertEmpty(empty.variables)

    def test_checkpoint_resumes_the_pool_exactly(self):
        batches = [tf.constant(distinct_images(2, offset=2 * i)) for i in range(6)]
        seeds = [tf.constant([0, i]) for i in range(6)]
        straight = ImagePool(3, [1, 1, 1])
        want = [query_and_store(straight, b, s).numpy() for b, s in zip(batches, seeds)]
        first = ImagePool(3, [1, 1, 1])
        for b, s in zip(batches[:3], seeds[:3]):
            query_and_store(first, b, s)
        prefix = tf.train.Checkpoint(pool=first).save(
            os.path.join(tempfile.mkdtemp(), "ckpt"))
        resumed = ImagePool(3, [1, 1, 1])
        tf.train.Checkpoint(pool=resumed).restore(prefix).assert_consumed()
        got = [query_and_store(resumed, b, s).numpy() for b, s in zip(batches[3:], seeds[3:])]
        self.assertAllEqual(np.stack(got), np.stack(want[3:]))
        self.assertNotAllEqual(np.stack(want[3:]), np.stack(batches[3:]))  # swaps happened

    def test_two_replicas_share_one_pool_like_one_device(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        self.assertLen(devices, 2, "tests/conftest.py splits the CPU into two devices")
        # Strategies of one process share collective keys, so the pool's all-gather would
        # abort a later strategy's collectives; a fresh key range before and after this
        # strategy keeps them apart (as TensorFlow's own strategy tests do).
        _bump_collective_keys()
        self.addCleanup(_bump_collective_keys)
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            mirrored = ImagePool(3, [1, 1, 1])
        single = ImagePool(3, [1, 1, 1])

        @tf.function
        def mirrored_query(batch, seed):
            local = strategy.experimental_distribute_values_from_function(
                lambda context: batch[2 * context.replica_id_in_sync_group:
                                      2 * context.replica_id_in_sync_group + 2])
            return strategy.run(lambda *args: query_and_store(mirrored, *args), args=(local, seed))

        for step in range(5):
            batch = tf.constant(distinct_images(4, offset=4 * step))
            seed = tf.constant([5, step])
            got = tf.concat(strategy.experimental_local_results(mirrored_query(batch, seed)), 0)
            self.assertAllEqual(got, query_and_store(single, batch, seed), msg=f"step {step}")
        for images, count in zip(strategy.experimental_local_results(mirrored.images),
                                 strategy.experimental_local_results(mirrored.count)):
            self.assertAllEqual(images, single.images)
            self.assertEqual(int(count), 3)
