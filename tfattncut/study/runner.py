"""Running a study: train each planned run, score it with the committed scorers, write its
score file; every step resumable (docs/design/study.md, "Running it").

Layout (two folders, so the small results can be kept in git and the large ones not):

    RUNS_DIR/NAME/                   an ordinary run directory per run (launch.train could
                                     resume it)
    STUDY_DIR/scorers/               the fixed scorers (tfattncut.study.scorers)
    STUDY_DIR/scores/NAME.json       the run's scores: a run with this file is done
    STUDY_DIR/samples/NAME.png       the run's row of the sample grid (tfattncut.study.grid)
    STUDY_DIR/report.md, report.json, chart.png, samples.png   (tfattncut.study.report)

A scored run is skipped, a trained one is only scored, an interrupted one resumes from its
newest checkpoint, so the study survives preemption and can be split over machines by
presets and stages; the score files of several machines merge as long as they share the
scorers and the data hash (tfattncut.study.scores refuses any other mix).
"""
import os
import time

import keras
import tensorflow as tf

from tfattncut import inference, json_files, machine
from tfattncut.study import events, grid, measures, plan, scores
from tfattncut.study.scorers import versions
from tfattncut.training.trainer import NonFiniteSteps, Trainer

# (score key, TensorBoard tag prefix) of the scalar series a run's scores keep from its logs,
# to show how a method's internals moved over training.
SERIES = (("zero_entropy_fraction", "selection/zero_entropy_fraction/"),
          ("attention_mask", "attention/mask_"))


class Study:
    """Trains and scores the runs of `settings` on `data` (a StudyData) with `scorers`
    (the committed ones, checked against the data by `scorers.load_scorers`)."""

    def __init__(self, settings, data, scorers):
        self.settings = settings
        self.data = data
        self.scorers = scorers

    def planned(self):
        """plan.planned_runs of the settings and the runs scored so far."""
        return plan.planned_runs(self.settings, scores.read_records(self.settings.study_dir))

    def run(self):
        """Trains and scores every planned run not yet scored that this machine may train
        (a plan.SAME_MACHINE run only on its machine); returns how many it did."""
        s = self.settings
        here = plan.machine_tag(machine.describe())
        done = 0
        while True:
            todo = [r for r in self.planned() if r.machine in ("", here)
                    and not os.path.exists(scores.score_path(s.study_dir, r.name))]
            if not todo:
                break
            run = todo[0]
            print(f"\n[{done + 1}, {len(todo)} left] {run.stage} {run.name}")
            self.train_and_score(run)
            done += 1
        waiting = [r.name for r in self.planned() if r.machine not in ("", here)]
        if waiting:  # the report counts them as planned until they are scored there
            print(f"\nLeft to the machines their names end with (trained again, to pair with "
                  f"runs trained there; run the study there): {', '.join(waiting)}")
        return done

    def train_and_score(self, run):
        config = plan.run_config(self.settings, run)
        trainer = Trainer(config)
        steps = trainer.total_steps
        try:
            trainer.fit()
        except NonFiniteSteps as error:
            self._write(run, config, steps, {"failed": f"{type(error).__name__}: {error}"})
            print(f"{run.name}: failed: {error}")
            return
        finally:
            del trainer
            keras.backend.clear_session()
        started = time.time()
        result, translated_test = self._score(run, config)
        if run.seed == self.settings.sample_seed and run.stage == "screen":
            grid.write_row(self.settings.study_dir, run.name, translated_test)
        result["scoring_minutes"] = (time.time() - started) / 60
        self._write(run, config, steps, result)
        print(f"{run.name}: downstream mIoU {result['downstream_miou']:.4f}, label mIoU "
              f"{result['label_miou']:.4f}, KID (segmenter) {result['kid_seg']:.4f}")

    def _score(self, run, config):
        """(the scores of measures, the translated testA) of a trained run."""
        # The downstream segmenters' data order draws on the global seed (tf.data's shuffle
        # pairs its own seed with it), which the trainer sets to the run's: set here as well,
        # a run scores the same whether or not this process trained it (`verify`).
        keras.utils.set_random_seed(run.seed)
        translator, _ = inference.load_translator(config.run_dir)
        train_a = self.data.split("train_a")
        translated_test = measures.translate(translator, self.data.split("test_a").pixels)
        downstream = measures.downstream(self.scorers, self.data,
                                         measures.translate(translator, train_a.pixels),
                                         train_a.labels)
        result = {"downstream_miou": downstream["mean"],
                  "downstream_miou_per_seed": downstream["per_seed"],
                  **measures.translation_scores(self.scorers, self.data, translated_test,
                                                kid_seed=run.seed)}
        keras.backend.clear_session()
        return result, translated_test

    def verify(self, name):
        """Scores the trained run `name` again from its run directory (nothing is written)
        and returns {score: (recorded, now)} of the scores that differ: {} when the scorers
        reproduce its score file to the bit (docs/design/study.md, "Running it")."""
        record = scores.read_records(self.settings.study_dir).get(name)
        if record is None:
            raise FileNotFoundError(f"--verify={name}: no "
                                    f"{scores.score_path(self.settings.study_dir, name)}")
        if record.get("failed"):
            raise ValueError(f"--verify={name}: the run failed ({record['failed']}); it has "
                             "no scores to reproduce")
        run = plan.Run(record["stage"], record["variant"], record["seed"],
                       record["steps_factor"], plan.machine_tag(record["machine"])
                       if record["stage"] == plan.SAME_MACHINE else "")
        config = plan.run_config(self.settings, run)
        newest = tf.train.latest_checkpoint(os.path.join(config.run_dir, "checkpoints"))
        if newest is None or not newest.endswith(f"-{record['steps']}"):
            raise FileNotFoundError(
                f"--verify={name}: {config.run_dir} holds no checkpoint of step "
                f"{record['steps']} (run directories stay on the machine that trained them)")
        result, _ = self._score(run, config)
        return {key: (record.get(key), value) for key, value in result.items()
                if record.get(key) != value}

    def _write(self, run, config, steps, result):
        logged = events.RunEvents(os.path.join(config.run_dir, "logs"))
        record = {
            "variant": run.variant, "seed": run.seed, "stage": run.stage,
            "steps_factor": run.steps_factor, "steps": steps, "model": config.model,
            "selector": config.selector, **self.scorers.identity(), "versions": versions(),
            "machine": machine.describe(), "training_minutes": logged.training_minutes(),
            "step_time_s": logged.median_step_time(),
            **{key: logged.scalar_series(prefix) for key, prefix in SERIES},
            **result}
        json_files.write_atomic(record, scores.score_path(self.settings.study_dir, run.name),
                                sort_keys=True)
