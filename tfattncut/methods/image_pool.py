"""The reference's ImagePool: the history of generated images a discriminator sees
(--pool_size), as a pure exchange function and a checkpointed, replica-shared module."""
import tensorflow as tf

from tfattncut.randomness import philox_bits


def pool_exchange(stored, count, images, seed):
    """One query of the reference's ImagePool, as a pure function of its state.

    stored [S, H, W, C] (the first `count` entries are filled), count int32 [], images
    [N, H, W, C], seed int32 [2]. Images are taken in order: while the pool is not full, an
    image is stored and returned as is; once it is full, with probability ½ a uniformly
    chosen stored image is returned and replaced by the new one, else the new one is returned.
    Returns (returned [N, H, W, C], new stored, new count).

    The draws are row i of one stateless draw of [N, 2] integer Philox bits (the same under
    XLA as in graph mode, see tfattncut.randomness).
    """
    size = stored.shape[0]
    bits = philox_bits([tf.shape(images)[0], 2], seed)

    def exchange(i, stored, count, returned):
        image = images[i]
        filling = count < size
        swap = tf.logical_and(tf.logical_not(filling), bits[i, 0] < 0)  # the sign bit: p = ½
        slot = tf.where(filling, count, tf.math.floormod(bits[i, 1], size))
        held = stored[slot]
        returned = tf.tensor_scatter_nd_update(returned, [[i]], [tf.where(swap, held, image)])
        stored = tf.tensor_scatter_nd_update(
            stored, [[slot]], [tf.where(tf.logical_or(filling, swap), image, held)])
        return i + 1, stored, count + tf.cast(filling, tf.int32), returned

    _, stored, count, returned = tf.while_loop(
        lambda i, *_: i < tf.shape(images)[0], exchange, (tf.constant(0), stored, count, images))
    return returned, stored, count


class ImagePool(tf.Module):
    """The history of generated images a discriminator sees (`--pool_size`, 50 in CycleGAN);
    `pool_exchange` gives the semantics. Size 0 returns the fakes unchanged.

    The state is two tf.Variables (the stored images and their count), checkpointed through
    the method's `extra_state`, and the draws come from the step seed, so a resumed run
    continues exactly.

    Under a distribution strategy there is one pool, not one per replica: every replica
    gathers the fakes of all replicas (in global batch order), runs the same exchange with
    the same seed -- so every replica computes the same new state, written once
    (ONLY_FIRST_REPLICA) -- and keeps the slice of the returned images that belongs to it.
    A mirrored run therefore sees exactly what one device sees with the global batch.
    """

    def __init__(self, size, image_shape, name=None):
        """image_shape: [H, W, C] of one stored image."""
        super().__init__(name=name)
        self.size = size
        if size:
            first = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self.images = tf.Variable(tf.zeros([size, *image_shape]), trainable=False,
                                      aggregation=first, name="images")
            self.count = tf.Variable(0, trainable=False, aggregation=first, name="count")

    def query(self, images, seed):
        """images [B, H, W, C] (this replica's, no gradient needed) -> ([B, H, W, C], state):
        pass `state` to `store` to write the pool's new state."""
        if not self.size:
            return images, ()
        context = tf.distribute.get_replica_context()
        local = tf.shape(images)[0]
        returned, stored, count = pool_exchange(
            tf.convert_to_tensor(self.images), tf.convert_to_tensor(self.count),
            context.all_gather(images, axis=0), seed)
        start = tf.cast(context.replica_id_in_sync_group, tf.int32) * local
        return returned[start:start + local], (stored, count)

    def store(self, state, skip=False):
        """Writes the state of `query` unless `skip` (bool [], equal on every replica)."""
        if not self.size:
            return
        stored, count = state
        self.images.assign(tf.where(skip, self.images, stored))
        self.count.assign(tf.where(skip, self.count, count))
