"""The training loop: distribution, XLA, checkpoints that resume exactly, summaries.

The method (tfattncut.methods) owns the per-replica math; this module owns everything
around it, so every method trains, resumes and logs the same way.

Exact resume: every random draw is a pure function of (seed, epoch, index) in the data
pipeline and of (seed, step) in the step, so the checkpointed step counter is the whole RNG
state; a resumed run rebuilds the same epoch and skips the batches already seen.
"""
import contextlib
import math
import os
import shutil
import signal
import tempfile
import threading

import tensorflow as tf
from absl import logging

from tfattncut.checkpoints import make_checkpoint, newest_intact
from tfattncut import config as config_lib
from tfattncut import json_files, process_settings, randomness
from tfattncut.config import Config
from tfattncut.data.unaligned import UnalignedFolders
from tfattncut.evaluation import evaluate, reports
from tfattncut.metrics import inception
from tfattncut.methods import build_method, method_class
from tfattncut.progress import Progress
from tfattncut.training import profiling, samples, summaries
from tfattncut.training.strategy import (make_strategy, replica_share, resolve_jit_compile,
                                         run_step)

# Exit status of a run stopped by SIGTERM after saving its checkpoint (sysexits' EX_TEMPFAIL:
# "try again"): the same command with --resume continues it.
EXIT_PREEMPTED = 75


class Preempted(Exception):
    """SIGTERM arrived; a checkpoint of the current step has been written."""


class NonFiniteSteps(RuntimeError):
    """--max_nonfinite_steps consecutive steps were skipped for non-finite losses or
    gradients; nothing was saved after the last good step."""


def _flag_value(value):
    """A config value as its flag is written: lists comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value


# The fields a resumed run may change: they decide how long it runs, where its files are and
# what it writes besides the weights, not what a step computes, so the steps already run stay
# those a straight run would have taken. n_epochs, n_epochs_decay and max_steps extend (or
# shorten) the run; the learning-rate schedule of the epochs still to run follows the new
# length. dataroot, checkpoints_dir and name follow a moved data set or run directory;
# make_synthetic only renders a missing data set; eval_every_epochs and eval_metrics choose
# what is scored, not trained (inception is not here: best_fid/ compares FIDs, which only
# one backbone makes comparable). Everything else (networks, losses, data pipeline, seed,
# optimisers, precision, XLA, distribution) would make the resumed steps another run's.
RESUMABLE_CHANGES = frozenset({
    "resume", "n_epochs", "n_epochs_decay", "max_steps", "dataroot", "checkpoints_dir", "name",
    "make_synthetic", "checkpoint_every", "keep_checkpoints", "summary_every", "log_every",
    "image_every", "profile_steps", "max_nonfinite_steps", "eval_every_epochs",
    "eval_metrics"})


class Trainer:
    """Trains `config.model` on `config.dataroot` into `config.run_dir`."""

    def __init__(self, config, strategy=None):
        self.config = config
        self.strategy = strategy or make_strategy(config.strategy)
        config_lib.validate(config)  # configs not built from flags
        replica_share(config, self.strategy)
        self.jit_compile, self.jit_reason = resolve_jit_compile(config.jit_compile, self.strategy)
        process_settings.allow_tf32(config.tf32)
        if config.eval_every_epochs:
            evaluate.check_training_evaluation(config)
        config_lib.check_discriminator_fits(config)  # configs not built from flags
        streams = method_class(config.model).input_streams(config)
        self.data = UnalignedFolders(config, streams=streams)
        self.steps_per_epoch = self.data.steps_per_epoch(config.batch_size)  # >= 1
        with self.strategy.scope():
            self.method = build_method(config)
        stacking = self.method.stacks_domains(config)
        if stacking:
            self.data.require_one_size(stacking, "turn that off")
        # Lowest FID seen by --eval_every_epochs; checkpointed so a resumed run keeps it.
        self.best_fid = tf.Variable(float("inf"), dtype=tf.float64, trainable=False)
        self._backbone = (inception.load_backbone(config.inception)
                          if config.eval_every_epochs and config.inception else None)
        # Host-side counter, outside the strategy: the loop reads it every step.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.checkpoint = make_checkpoint(
            step=self.step, best_fid=self.best_fid, **self.method.networks,
            **self.method.extra_state,
            **{f"optimizer_{k}": v for k, v in self.method.optimizers.items()})
        # Only the chief writes the run directory. Every worker takes part in each save (a
        # collective under MultiWorkerMirroredStrategy): the others save into a scratch
        # directory removed right after (docs/design/training.md#distribution).
        self.is_chief = self.strategy.extended.should_checkpoint
        self._scratch_dir = os.path.join(tempfile.gettempdir(), f"tfattncut_worker_{os.getpid()}")
        self.checkpoint_dir = os.path.join(config.run_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._writable(self.checkpoint_dir),
            max_to_keep=config.keep_checkpoints)
        self.best_manager = tf.train.CheckpointManager(
            self.checkpoint, self._writable(os.path.join(config.run_dir, "best_fid")),
            max_to_keep=1)
        self._saved_step = None
        self._distributed_step = self._make_distributed_step()
        self._diagnostics = tf.function(self.method.diagnostics)

    @property
    def total_steps(self):
        epochs = self.config.n_epochs + self.config.n_epochs_decay
        total = epochs * self.steps_per_epoch
        return min(total, self.config.max_steps) if self.config.max_steps else total

    def _writable(self, directory):
        """Where this process writes what belongs in `directory` of the run."""
        if self.is_chief:
            return directory
        return os.path.join(self._scratch_dir, os.path.basename(directory))

    def _make_distributed_step(self):
        @tf.function
        def distributed_step(batch, seed, stop):
            losses, images = run_step(self.strategy, self.method, batch, seed,
                                      self.jit_compile)
            # Whether any worker got SIGTERM: all must save and stop after the same step, as
            # each step and each save is a collective under MultiWorkerMirroredStrategy.
            stops = self.strategy.run(lambda: tf.cast(stop, tf.float32))
            stop = self.strategy.reduce(tf.distribute.ReduceOp.SUM, stops, axis=None) > 0
            return losses, images, stop

        return distributed_step

    def restore_or_start(self):
        """Restores the newest intact checkpoint with --resume (a damaged newer one is named,
        and copied aside by the chief before new saves can overwrite it); refuses to overwrite
        a run without --resume, or a resume whose flags would change what the run computes."""
        if self.config.resume:
            self._check_resumable_changes()
            latest = newest_intact(self.checkpoint_dir, keep_damaged=self.is_chief)
            if latest:
                try:
                    self.checkpoint.restore(latest).assert_existing_objects_matched()
                except (ValueError, AssertionError) as error:
                    raise ValueError(self._unrestorable(latest, error)) from error
                self._saved_step = int(self.step)
                logging.info("Resumed from %s at step %d", latest, int(self.step))
            else:
                logging.info("--resume: no checkpoint in %s yet; starting at step 0",
                             self.checkpoint_dir)
        else:
            # best_fid/ alone (a run stopped before its first regular checkpoint) is a result too.
            existing = self.latest_checkpoint or tf.train.latest_checkpoint(
                self.best_manager.directory)
            if existing:
                raise FileExistsError(
                    f"{self.config.run_dir} already holds checkpoints ({existing}); pass "
                    "--resume to continue it, or choose another --name")

    def _check_resumable_changes(self):
        """Refuses --resume with flags, other than RESUMABLE_CHANGES, that differ from the
        run's config.json: they would continue the run as another one and overwrite its
        record."""
        saved = os.path.join(self.config.run_dir, "config.json")
        if not os.path.exists(saved):
            return
        changed = self.config.changed_fields(Config.from_json_file(saved))
        refused = sorted(set(changed) - RESUMABLE_CHANGES)
        if refused:
            raise ValueError(
                f"--resume: flags that differ from the run's {saved}: " + ", ".join(
                    f"--{name} {_flag_value(changed[name][1])} -> "
                    f"{_flag_value(changed[name][0])}" for name in refused) +
                ". They change what the run computes; resume with the run's values, or start "
                "a new run with another --name")

    def _unrestorable(self, checkpoint, error):
        """Why --resume cannot continue from `checkpoint`: TensorFlow's complaint. The flags
        were checked against the run's config.json before; a run without one may have been
        trained with other networks."""
        return (f"--resume: {checkpoint} does not fit the networks this command builds "
                f"({str(error).strip().splitlines()[0]}). Resume with the run's flags, or "
                "choose another --name")

    def fit(self):
        """Runs until `total_steps`; returns the per-step losses of this process (floats)."""
        config = self.config
        self.restore_or_start()
        profiling.check_window(config.profile_steps, self.total_steps, int(self.step))
        self.method.prepare(self.data, self._writable(config.run_dir))
        if self.is_chief:
            os.makedirs(config.run_dir, exist_ok=True)
            with open(os.path.join(config.run_dir, "config.json"), "w") as f:
                f.write(config.to_json())
        logging.info("jit_compile=%s (%s); %d replica(s); %d steps per epoch, %d steps in all",
                     self.jit_compile, self.jit_reason, self.strategy.num_replicas_in_sync,
                     self.steps_per_epoch, self.total_steps)
        writer = (tf.summary.create_file_writer(os.path.join(config.run_dir, "logs"))
                  if self.is_chief else tf.summary.create_noop_writer())
        history = []
        self._progress = Progress(self.total_steps, every=config.log_every, start=int(self.step))
        trace_graph = int(self.step) == 0
        self._stop_requested = False
        self.nonfinite_steps = 0  # skipped steps of this process, for TensorBoard
        self._consecutive_nonfinite = 0
        self._profiler = profiling.StepProfiler(os.path.join(config.run_dir, "logs"),
                                                config.profile_steps if self.is_chief else ())
        with writer.as_default(), self._stop_on_sigterm(), self._profiler:
            while int(self.step) < self.total_steps:
                history += self._run_epoch(trace_graph)
                trace_graph = False
            self.save()
            writer.flush()
        return history

    @contextlib.contextmanager
    def _stop_on_sigterm(self):
        """While training, SIGTERM (preemption, `kill`) asks the loop to stop after the
        current step, save a checkpoint and raise Preempted. Only the main thread may install
        signal handlers; elsewhere SIGTERM keeps its default meaning."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            del signum, frame
            self._stop_requested = True

        previous = signal.signal(signal.SIGTERM, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _run_epoch(self, trace_graph):
        config = self.config
        step = int(self.step)
        epoch, skip = divmod(step, self.steps_per_epoch)
        epoch += 1
        lr = self.method.schedule(config.lr, epoch)
        self.method.start_epoch(epoch, lr)
        steps = min(self.steps_per_epoch - skip, self.total_steps - step)

        def dataset_fn(context):
            """This input pipeline's part of the epoch's global batches."""
            dataset = self.data.epoch_dataset(epoch, config.batch_size, skip_batches=skip,
                                              input_context=context)
            # epoch_dataset shards by element index itself; tf.data must not shard again.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF)
            local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
            return dataset.take(steps * local_replicas).with_options(options)

        self._progress.note(f"Epoch {epoch}/{config.n_epochs + config.n_epochs_decay} "
                            f"(lr {lr:.3g})")
        history = []
        for batch in self.strategy.distribute_datasets_from_function(dataset_fn):
            seed = randomness.step_seed(config.seed, step)
            if trace_graph:
                tf.summary.trace_on(graph=True)
            self._profiler.before_step(step + 1)
            losses, images, stop = self._distributed_step(
                batch, seed, tf.constant(self._stop_requested))
            if trace_graph:
                tf.summary.trace_export("train_step", step=step)
                trace_graph = False
            self.step.assign_add(1)
            step += 1
            values = {k: float(v) for k, v in losses.items()}  # waits for the step
            self._profiler.after_step(step)
            nonfinite = values.pop("nonfinite") > 0
            history.append(values)
            self._progress.update(step, values)
            self._write_summaries(step, values, lr, images, seed)
            self._track_nonfinite(step, nonfinite, values)
            stop = bool(stop)  # agreed by every worker, unlike self._stop_requested
            # A skipped step changed nothing but the step counter: no checkpoint of it.
            if (step % config.checkpoint_every == 0 and not nonfinite) or stop:
                self.save()
            if stop:
                raise Preempted(f"SIGTERM at step {step}: saved {self.latest_checkpoint}")
        if step == epoch * self.steps_per_epoch:
            self._evaluate(epoch, step)
        return history

    def _evaluate(self, epoch, step):
        """--eval_every_epochs: score the test split, log it, keep the best-FID checkpoint."""
        config = self.config
        if not config.eval_every_epochs or epoch % config.eval_every_epochs:
            return
        report = evaluate.evaluate_translator(
            self.method.generator, config.dataroot, config.direction, list(config.eval_metrics),
            self._backbone, config.crop_size, epoch=epoch, seed=config.seed)
        if self.is_chief:
            try:
                reports.write_json(report, reports.epoch_report_path(config.run_dir, epoch))
            except json_files.NonFiniteValue as error:  # not worth the training run
                logging.warning("Epoch %d: %s Training goes on.", epoch, error)
        reports.log_to_tensorboard(report, step)
        fid = report["metrics"].get("fid")
        if fid is not None and fid < float(self.best_fid):
            self.best_fid.assign(fid)
            self._save_into(self.best_manager, step)
            logging.info("Epoch %d: best FID so far, %.4f; saved in %s", epoch, fid,
                         self.best_manager.directory)

    def _track_nonfinite(self, step, nonfinite, losses):
        """Counts a step the method skipped for a non-finite loss or gradient (float16
        loss-scale overflows are not counted by the method); raises NonFiniteSteps after
        --max_nonfinite_steps in a row, before anything of them is saved."""
        config = self.config
        if nonfinite:
            self.nonfinite_steps += 1
            self._consecutive_nonfinite += 1
            bad = sorted(k for k, v in losses.items() if not math.isfinite(v))
            logging.warning("Step %d: non-finite loss or gradient (non-finite losses: %s); the "
                            "update was skipped (%d such steps in a row)", step,
                            ", ".join(bad) or "none, a gradient", self._consecutive_nonfinite)
        else:
            self._consecutive_nonfinite = 0
        if nonfinite or step % config.summary_every == 0 or step == 1:
            tf.summary.scalar("train/nonfinite_steps", self.nonfinite_steps, step=step)
        if config.max_nonfinite_steps and \
                self._consecutive_nonfinite >= config.max_nonfinite_steps:
            raise NonFiniteSteps(
                f"{self._consecutive_nonfinite} consecutive steps up to step {step} had "
                f"non-finite losses or gradients (--max_nonfinite_steps="
                f"{config.max_nonfinite_steps}); stopped without saving them. The newest "
                f"checkpoint, {self.latest_checkpoint}, is from before them; lower --lr, check "
                "the data, or pass --max_nonfinite_steps=0 to keep going")

    def _write_summaries(self, step, losses, lr, images, seed):
        """`seed`: the step's own, so that the diagnostics see what the step trained on."""
        config = self.config
        if step % config.summary_every == 0 or step == 1:
            summaries.write_scalars(step, losses, lr)
        if step % config.image_every == 0 or step == 1:
            summaries.write_images(step, images, self.method.image_rows)
            summaries.write_diagnostics(step, images, self._diagnostics(images, seed))
            summaries.write_histograms(step, self.method.networks)

    @property
    def latest_checkpoint(self):
        """The newest checkpoint of the run (the chief's), or None."""
        return tf.train.latest_checkpoint(self.checkpoint_dir)

    def save(self):
        """Writes a checkpoint of the current step (once per step; the decision depends only
        on the step, so every worker makes the same one)."""
        step = int(self.step)
        if step != self._saved_step:
            self._save_into(self.manager, step)
            self._saved_step = step

    def _save_into(self, manager, step):
        manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)

    def write_samples(self):
        """`samples.write_sample_sheet` of this step's generator; None when this process is
        not the chief (or the data set has no source test split)."""
        if not self.is_chief:
            return None
        return samples.write_sample_sheet(self.method.generator, self.config, int(self.step))
