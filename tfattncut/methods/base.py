"""The contract of a training method, and the set-up every method shares.

A method is the per-replica math of one paper (Model Garden's `Task`): its networks, their
optimisers and one step. The trainer (tfattncut.training.trainer) owns everything around it
-- strategy, loop, checkpoints, summaries -- and talks to a method only through `Method`.
"""
import keras
import tensorflow as tf

from tfattncut.methods.adam import make_adam
from tfattncut.methods.guarded_update import GuardedUpdate
from tfattncut.methods.precision import check_precision_policy
from tfattncut.methods.schedule import EpochSchedule

# What a method calls its networks with once, so that every weight exists before the
# optimisers are built; [1, 64, 64, 3] fits every network and costs little.
PROBE_SHAPE = [1, 64, 64, 3]


class Method(keras.Model):
    """A training method: networks, their optimisers, the D and G updates, one step.

    A `keras.Model` rather than a `tf.Module`: the networks are Keras models, so as attributes
    of one they are tracked and counted like any Keras sub-model, and `method(images)`
    translates A→B as in the keras.io examples. Keras' own `fit` / `train_step(data)` are not
    used (`fit` fails under MultiWorkerMirroredStrategy with Keras 3, training.md); the step
    is `replica_step`, a different name so that no one mistakes it for Keras'.

    The constructor does what every method needs, in this order: it checks that the global
    Keras policy is --mixed_precision's, seeds every initialiser with --seed, calls
    `build_networks(probe)`, then `build_optimizers()` (optimisers built up front: lazily
    created ones fail with 2+ replicas), and makes the two guarded updates `update_d` and
    `update_g` (tfattncut.methods.guarded_update).

    A subclass provides:
      build_networks(probe): create its networks as attributes and call each once on `probe`
        ([1, 64, 64, 3] zeros) or what it produces, so their weights exist;
      build_optimizers(): one `add_optimizer(...)` per group of variables;
      networks: {checkpoint key: network};
      generator (attribute or property): the A→B translator, which `call`, the trainer's
        sample grid and its evaluation use;
      replica_step(batch, seed) -> (losses, images): one iteration on this replica's batch
        {"a": [B, H, W, 3], "b": [B, H, W, 3]}; seed int32 [2], unique to the step and equal
        on every replica. Losses are local means, unscaled, with `nonfinite` 1.0 when a
        non-finite loss or gradient skipped an update; images are those of `image_rows`.
        It must compile under tf.function (and XLA) and run under strategy.run;
      build_translator(config, direction) (classmethod) -> (translator, trackables): the
        callable that maps [B, H, W, 3] images in [-1, 1] for inference and export, and the
        objects to restore into it (keys as in `networks`);
    and may extend `extra_state` (checkpointed state beyond networks and optimisers) and
    `start_epoch`, and set `image_rows`.
    """

    # TensorBoard image rows: tag -> the `images` keys shown side by side (rows whose keys a
    # step does not return are skipped).
    image_rows = {}

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        check_precision_policy(config.mixed_precision)
        keras.utils.set_random_seed(config.seed)
        self.schedule = EpochSchedule.from_config(config)
        # key -> (optimizer, its own base learning rate or None to follow --lr).
        self._optimizer_table = {}
        self.build_networks(tf.zeros(PROBE_SHAPE))
        self.build_optimizers()
        self.update_d = GuardedUpdate(config.mixed_precision, name="update_d")
        self.update_g = GuardedUpdate(config.mixed_precision, name="update_g")
        self.built = True

    def build_networks(self, probe):
        raise NotImplementedError(f"{type(self).__name__} must define build_networks(probe)")

    def build_optimizers(self):
        raise NotImplementedError(f"{type(self).__name__} must define build_optimizers()")

    @property
    def networks(self):
        raise NotImplementedError(f"{type(self).__name__} must define networks")

    def replica_step(self, batch, seed):
        raise NotImplementedError(f"{type(self).__name__} must define replica_step")

    @classmethod
    def build_translator(cls, config, direction="AtoB"):
        raise NotImplementedError(f"{cls.__name__} must define build_translator")

    def add_optimizer(self, key, variables, learning_rate=None, beta_1=None):
        """A TorchAdam for `variables`, built now, checkpointed as `optimizer_<key>`.

        learning_rate, beta_1: its own base rate and β1 (DCLGAN's heads: --lr_F, --beta1_F);
        by default --lr (following the rate the trainer passes to `start_epoch`) and --beta1.
        β2 is --beta2 for all.
        """
        cfg = self.config
        optimizer = make_adam(cfg.lr if learning_rate is None else learning_rate,
                              cfg.beta1 if beta_1 is None else beta_1, cfg.beta2)
        optimizer.build(variables)
        self._optimizer_table[key] = (optimizer, learning_rate)
        return optimizer

    @property
    def optimizers(self):
        """{checkpoint key: optimizer}, in the order they were added."""
        return {key: optimizer for key, (optimizer, _) in self._optimizer_table.items()}

    @property
    def extra_state(self):
        """Checkpointed state beyond networks and optimisers: the loss scales."""
        return {"update_d": self.update_d, "update_g": self.update_g}

    def start_epoch(self, epoch, learning_rate):
        """Called by the trainer before each 1-based epoch (also when resuming mid-epoch).

        learning_rate: --lr under the schedule this epoch (what the run logs as `lr`); an
        optimiser with its own base rate follows the same schedule from that rate.
        """
        for optimizer, base_rate in self._optimizer_table.values():
            optimizer.learning_rate = (learning_rate if base_rate is None
                                       else self.schedule(base_rate, epoch))

    def call(self, images, training=False):
        return self.generator(images)
