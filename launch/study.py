"""The method study: `python -m launch.study --flagfile=configs/study.cfg`.

Trains every preset in --presets for each of --seeds on one data set and budget (the presets
keep their method settings; the --train_flag values override size and budget alike for all),
scores each run and writes STUDY_DIR/report.md, report.json, chart.png and samples.png
(tfattncut.training.study). Rerunning the same command skips scored runs and resumes
interrupted ones; `--report_only --merge=DIR,...` merges the scores of studies run elsewhere.
A SIGTERM saves the running run's checkpoint and exits with status 75; rerun to continue.
"""
import sys
import time

from absl import flags, logging

from tfattncut import cli
from tfattncut.evaluation.study_report import HEADLINE_END, HEADLINE_START
from tfattncut.training import study
from tfattncut.training.trainer import EXIT_PREEMPTED, Preempted

flags.DEFINE_list("presets", list(study.DEFAULT_VARIANTS),
                  "Presets (configs/NAME.cfg) and study variants to train: "
                  f"{', '.join(study.DEFAULT_VARIANTS)} (qsattn_local_correct = qsattn_local "
                  "with --qs_local_layout=correct).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every preset (--seed of each run).")
flags.DEFINE_string("study_dir", "runs/study/results", "Small results: scores/, report.md, "
                    "report.json, chart.png, samples.png (keep it in version control).")
flags.DEFINE_string("runs_dir", "runs/study", "Run directories, translations and the "
                    "per-seed segmenters (large).")
flags.DEFINE_multi_string("train_flag", [], "A launch.train flag applied to every run after "
                          "its preset, e.g. --train_flag=--ngf=32 (repeat the flag).")
flags.DEFINE_string("configs_dir", "configs", "Folder of the preset flagfiles.")
flags.DEFINE_integer("segmenter_images", 250, "Training images of every downstream segmenter "
                     "(the first N of trainA / trainB; 0: all).", lower_bound=0)
flags.DEFINE_integer("segmenter_epochs", 5, "Epochs of every segmenter.", lower_bound=1)
flags.DEFINE_integer("segmenter_batch_size", 8, "Segmenter batch size.", lower_bound=1)
flags.DEFINE_float("segmenter_learning_rate", 1e-3, "Segmenter Adam learning rate.",
                   lower_bound=0.0)
flags.DEFINE_integer("segmenter_width", 32, "Segmenter width.", lower_bound=1)
flags.DEFINE_string("inception", "", "Also score FID/KID with this local backbone "
                    "(fid2015:PATH or keras:PATH); empty: only the segmenter's feature space.")
flags.DEFINE_integer("grid_images", 4, "testA images in the sample grid.", lower_bound=1)
flags.DEFINE_string("doc", "", "Also write the report to this Markdown file (e.g. "
                    "docs/study.md), with the images linked relative to it.")
flags.DEFINE_string("readme", "", "Also write the headline table (the three metrics a user "
                    f"chooses by) into this Markdown file, between its lines '{HEADLINE_START}' "
                    f"and '{HEADLINE_END}' (e.g. README.md).")
flags.DEFINE_bool("report_only", False, "Only write the report from the scores already in "
                  "--study_dir and --merge.")
flags.DEFINE_list("merge", [], "Other study folders whose scores/ the report includes.")
FLAGS = flags.FLAGS


def settings_from_flags():
    try:
        seeds = tuple(int(s) for s in FLAGS.seeds)
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers; got {','.join(FLAGS.seeds)}")
    return study.StudySettings(
        study_dir=FLAGS.study_dir, runs_dir=FLAGS.runs_dir, variants=tuple(FLAGS.presets),
        seeds=seeds, train_flags=tuple(FLAGS.train_flag), configs_dir=FLAGS.configs_dir,
        segmenter_images=FLAGS.segmenter_images, segmenter_epochs=FLAGS.segmenter_epochs,
        segmenter_batch_size=FLAGS.segmenter_batch_size,
        segmenter_learning_rate=FLAGS.segmenter_learning_rate,
        segmenter_width=FLAGS.segmenter_width, inception=FLAGS.inception,
        grid_images=FLAGS.grid_images, doc_path=FLAGS.doc, readme_path=FLAGS.readme,
        command=" ".join(a for a in sys.argv[1:]
                         if not a.startswith(("--report_only", "--merge"))))


def main(_argv):  # cli.run refuses positional arguments
    settings = settings_from_flags()
    start = time.time()
    if FLAGS.report_only:
        study.write_report(settings, FLAGS.merge)
    else:
        try:
            study.Study(settings).run()
        except Preempted as stop:
            print(f"\n{stop}. Run the same command again to continue the study.")
            sys.exit(EXIT_PREEMPTED)
        study.write_report(settings, FLAGS.merge)
    print(f"\nReport: {settings.study_dir}/report.md ({(time.time() - start) / 60:.1f} min)")


if __name__ == "__main__":
    logging.set_verbosity(logging.WARNING)
    cli.run(main)
