"""The contract of a training method, and the set-up every method shares.

A method is the per-replica math of one paper (Model Garden's `Task`): its networks, their
optimisers and one step. The trainer (tfattncut.training.trainer) owns everything around it
-- strategy, loop, checkpoints, summaries -- and talks to a method only through `Method`.
"""
import collections
import contextlib
import functools
import threading

import keras
import tensorflow as tf
from tensorflow.python.eager import context as tf_context

from tfattncut.methods.adam import make_adam
from tfattncut.methods.guarded_update import GuardedUpdate
from tfattncut.methods.precision import check_precision_policy
from tfattncut.methods.schedule import EpochSchedule
from tfattncut.options import NoOptions


class _XlaGradients:
    """Gradients of tf.cond built in XLA's form while any compiled step is inside.

    TensorFlow builds the gradient of an XLA-compiled function outside XLA's context, where a
    tf.cond's gradient receives its branches' intermediates as Optionals, which XLA cannot
    compile (TF 2.21: "No registered 'OptionalFromValue' OpKernel for XLA_CPU_JIT"; FastCUT's
    flip is such a cond). With optionals off, cond_v2 passes them as plain tensors, as it does
    inside XLA. The switch is process-wide and the replicas of a MirroredStrategy trace in
    turns on their own threads, so entries are counted: off while any step is inside, back
    as it was once the last one leaves.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._inside = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def __call__(self):
        with self._lock:
            if not self._inside:
                self._was_enabled = tf_context.optionals_in_gradients_enabled()
                tf_context.disable_optionals_in_gradients()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if not self._inside and self._was_enabled:
                    tf_context.enable_optionals_in_gradients()


_xla_gradients = _XlaGradients()


class Diagnostics(collections.namedtuple("Diagnostics", ["scalars", "selection_maps"])):
    """What a method shows in TensorBoard beyond its losses and image rows.

    scalars: {tag: float32 []}, e.g. how much of an attention mask is kept;
    selection_maps: [tfattncut.selection.base.SelectionMap], where the selectors look.
    """


# What a method calls its networks with once, so that every weight exists before the
# optimisers are built; [1, 64, 64, 3] fits every network and costs little.
PROBE_SHAPE = [1, 64, 64, 3]


class Method(keras.Model):
    """A training method: networks, their optimisers, the D and G updates, one step.

    A `keras.Model` rather than a `tf.Module`: the networks are Keras models, so as attributes
    of one they are tracked and counted like any Keras sub-model, and `method(images)`
    translates A→B as in the keras.io examples. Keras' own `fit` / `train_step(data)` are not
    used (`fit` fails under MultiWorkerMirroredStrategy with Keras 3,
    docs/design/training.md#distribution); the step is `replica_step`, a different name so
    that no one mistakes it for Keras'.

    Everything about one method is in its own file; the trainer, the data layer and the
    flags find it through these class attributes and classmethods:
      options: a frozen dataclass of the method's own flags (tfattncut.options.option
        fields), read back as `config.<name>`; check_config(config) refuses values that
        cannot work together, before any data is read;
      input_streams(config): the names of the batch entries `forward` needs
        (tfattncut.data.unaligned: images "a", "b" and label maps "a_labels", "b_labels");
      stacks_domains(config): why every training image must have one size, or None.

    The constructor does what every method needs, in this order: it checks its options,
    checks that the global Keras policy is --mixed_precision's, seeds every initialiser with
    --seed, calls `build_networks(probe)`, then `build_optimizers()` (optimisers built up
    front: lazily created ones fail with 2+ replicas), and makes the two guarded updates
    `update_d` and `update_g` (tfattncut.methods.guarded_update).

    `replica_step` is the update rule of docs/design/losses.md#update-step, the same for
    every method: one forward pass, D's update, then G's (and F's, ...) update against the
    *updated* D. A subclass declares the pieces that XLA may compile -- pure functions of
    tensors and the networks' weights, with no cross-replica communication:
      forward(batch, seed) -> out: the translations (and whatever else both losses need) of
        this replica's batch {stream: tensor} of `input_streams` ("a", "b": [B, H, W, 3]);
        a dict of tensors or lists of tensors; seed int32 [2], unique to the step and equal
        on every replica;
      discriminator_loss(judged) -> (loss, terms): D's float32 [] loss (this replica's mean,
        unscaled) and its logged terms, from `judged` (see discriminator_inputs);
      generator_loss(out, seed) -> (loss, terms): the same for the G-side update, computed
        after D's update, so its GAN terms see the updated D;
    and the rest:
      build_networks(probe): create its networks as attributes and call each once on `probe`
        ([1, 64, 64, 3] zeros) or what it produces, so their weights exist;
      build_optimizers(): one `add_optimizer(...)` per group of variables;
      discriminator_groups(), generator_groups(): [(optimizer, variables)] of each update;
      networks: {checkpoint key: network};
      generator (attribute or property): the A→B translator, which `call`, the trainer's
        sample grid and its evaluation use;
      build_translator(config, direction) (classmethod) -> (translator, trackables): the
        callable that maps [B, H, W, 3] images in [-1, 1] for inference and export, and the
        objects to restore into it (keys as in `networks`);
    and may override `discriminator_inputs` / `discriminator_updated` (what D sees, e.g.
    through a pool of earlier fakes, which needs all replicas' fakes), `prepare` (work on
    the run's data before its first step, e.g. a frozen network trained or loaded),
    `summary_images` and `diagnostics` (what TensorBoard shows), extend `extra_state`
    (checkpointed state beyond networks and optimisers) and `start_epoch`, and set
    `image_rows`.
    """

    # TensorBoard image rows: tag -> the `images` keys shown side by side (rows whose keys a
    # step does not return are skipped).
    image_rows = {}
    options = NoOptions

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.check_config(config)
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

    @classmethod
    def check_config(cls, config):
        """Raises ValueError naming the flags when the method's options cannot work with the
        rest of `config` (config.validate calls it, before the data is read). Nothing by
        default."""
        del config

    @classmethod
    def input_streams(cls, config):
        """The batch entries `forward` reads, served by the data layer
        (tfattncut.data.unaligned.UnalignedFolders): real images of A and B by default."""
        del config
        return ("a", "b")

    @classmethod
    def stacks_domains(cls, config):
        """Why `config` runs A and B images through one generator as one batch (so every
        training image must have one size), or None. Subclasses that stack say so."""
        return None

    def build_networks(self, probe):
        raise NotImplementedError(f"{type(self).__name__} must define build_networks(probe)")

    def build_optimizers(self):
        raise NotImplementedError(f"{type(self).__name__} must define build_optimizers()")

    @property
    def networks(self):
        raise NotImplementedError(f"{type(self).__name__} must define networks")

    def forward(self, batch, seed):
        raise NotImplementedError(f"{type(self).__name__} must define forward(batch, seed)")

    def discriminator_loss(self, judged):
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_loss")

    def generator_loss(self, out, seed):
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss")

    def discriminator_groups(self):
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_groups()")

    def generator_groups(self):
        raise NotImplementedError(f"{type(self).__name__} must define generator_groups()")

    def discriminator_inputs(self, out, seed):
        """(judged, pending): what `discriminator_loss` gets -- by default all of `out`,
        without gradient (D's update trains D alone) -- and what `discriminator_updated`
        needs afterwards. Runs outside XLA, so it may communicate across replicas."""
        del seed
        return tf.nest.map_structure(tf.stop_gradient, out), None

    def discriminator_updated(self, pending, skipped):
        """Called after D's update with `discriminator_inputs`' `pending` and whether the
        update was skipped (bool [], equal on every replica). Nothing by default."""
        del pending, skipped

    def summary_images(self, out):
        """The entries of `out` that `image_rows` shows ([B, H, W, 3] in [-1, 1])."""
        keys = {key for row in self.image_rows.values() for key in row}
        return {key: value for key, value in out.items() if key in keys}

    def prepare(self, data, run_dir):
        """Called once by the trainer before the first step of this process, resumed runs
        included, with the run's `UnalignedFolders` (serving `input_streams`) and the folder
        where this process keeps the run's files. Nothing by default."""
        del data, run_dir

    def diagnostics(self, images, seed):
        """`Diagnostics` of `summary_images`' images, which the trainer logs with them (in a
        tf.function); seed int32 [2], the step's. Nothing by default."""
        del images, seed
        return Diagnostics({}, [])

    @functools.cached_property
    def _xla_parts(self):
        """forward, discriminator_loss and generator_loss, each XLA-compiled; made once, so
        each traces and compiles once per input signature (and replica device)."""
        return tuple(tf.function(part, jit_compile=True)
                     for part in (self.forward, self.discriminator_loss, self.generator_loss))

    def replica_step(self, batch, seed, jit_compile=False):
        """One iteration on this replica's batch -> (losses, images); runs under strategy.run.

        batch {"a": [B, H, W, 3], "b": [B, H, W, 3]}; seed int32 [2] (see `forward`).
        Losses are local means, unscaled, with `nonfinite` 1.0 when a non-finite loss or
        gradient skipped an update; images are those of `image_rows`.

        jit_compile: XLA compiles `forward`, `discriminator_loss` and `generator_loss`, and,
        through the tape, the gradient function of each. The rest -- the pool exchange of
        `discriminator_inputs`, loss scaling, the finiteness agreement and the optimiser
        updates, whose cross-replica all-reduces XLA cannot compile under MirroredStrategy
        (docs/design/training.md#xla) -- stays in graph mode between them. One forward pass
        serves both updates, as without XLA: G's tape records the compiled calls, so G's
        gradient runs the backward of `forward` that XLA compiles for it, with no second
        forward pass.
        """
        if not jit_compile:
            return self._step(batch, seed, self.forward, self.discriminator_loss,
                              self.generator_loss)
        with _xla_gradients():
            return self._step(batch, seed, *self._xla_parts)

    def _step(self, batch, seed, forward, discriminator_loss, generator_loss):
        """replica_step with these three parts."""
        # G's tape holds the forward pass while D is updated, so the GAN terms of
        # generator_loss see the updated D, as the reference's update order requires. Two
        # tapes, not one persistent tape: the calls each records are then first-order only,
        # which TensorFlow traces faster (a tiny compiled CUT step: 9 s instead of 17 s).
        with tf.GradientTape() as tape_g:
            out = forward(batch, seed)
        judged, pending = self.discriminator_inputs(out, seed)
        with tf.GradientTape() as tape_d:
            loss_d, terms_d = discriminator_loss(judged)
        skipped_d, nonfinite_d = self.update_d.minimize(tape_d, loss_d,
                                                        self.discriminator_groups())
        self.discriminator_updated(pending, skipped_d)
        with tape_g:
            loss_g, terms_g = generator_loss(out, seed)
        _, nonfinite_g = self.update_g.minimize(tape_g, loss_g, self.generator_groups())
        nonfinite = tf.cast(tf.logical_or(nonfinite_d, nonfinite_g), tf.float32)
        return ({**terms_d, "D": loss_d, **terms_g, "G": loss_g, "nonfinite": nonfinite},
                self.summary_images(out))

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
