"""The downstream sim-to-real experiment (attention-based CUT's validation;
docs/design/synthetic.md#the-downstream-check).

A translation A -> B is useful for sim-to-real when it changes the style and keeps every
object where it was, so that the simulator's labels stay valid. The experiment measures
exactly that: the same small segmenter (`models.segmenter.build_segmenter`, same initial weights)
is trained three times and scored by mean IoU on B's test split (real "camera" images with
their labels):

    raw A            A images with A labels: the domain gap, untreated;
    translated A     A images translated by the checkpoint, with A labels: the method;
    B (upper bound)  B images with B labels: what B-domain labels would give.

A good translator lifts "translated A" above "raw A" towards the upper bound.
"""
import os

from tfattncut import inference, translation
from tfattncut.data import image_files
from tfattncut.evaluation import charts, reports
from tfattncut.evaluation import segmenter
from tfattncut.models.segmenter import BATCH_SIZE, LEARNING_RATE, WIDTH

RAW, TRANSLATED, UPPER = "raw A", "translated A", "B (upper bound)"
REPORT = "downstream.json"
CHART = "downstream.png"
SEGMENTER_B = "segmenter_B"
TRANSLATED_A = "trainA_translated"
# What run_downstream writes in its output folder.
OUTPUTS = (REPORT, CHART, SEGMENTER_B, TRANSLATED_A)


def _train_images(dataroot, folder, max_images):
    paths = image_files.list_images(os.path.join(dataroot, folder))
    return paths[:max_images] if max_images else paths


def run_downstream(dataroot, checkpoint, output_dir, epochs=5,
                   batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, max_train_images=0,
                   width=WIDTH, seed=0):
    """Runs the three arms; writes OUTPUT_DIR/downstream.json, downstream.png (bar chart of
    mean IoU), trainA_translated/ and segmenter_B/ (the upper-bound segmenter as a SavedModel,
    usable as `launch.evaluate --segmenter`). Returns the report.

    dataroot: trainA, trainB, testB and their *_labels folders (Cityscapes label ids).
    checkpoint: a run trained A -> B (run directory or checkpoint prefix).
    max_train_images: the first N sorted images of trainA and of trainB (0: all).
    Every image's label map is found before anything is translated or trained.
    """
    translator, config = inference.load_translator(checkpoint)
    if config.direction != "AtoB":
        raise ValueError(f"--checkpoint={checkpoint} was trained with --direction="
                         f"{config.direction}; the downstream experiment translates the "
                         f"simulator domain A into B's style and needs an AtoB run.")
    train_a = _train_images(dataroot, "trainA", max_train_images)
    train_b = _train_images(dataroot, "trainB", max_train_images)
    test_b = image_files.list_images(os.path.join(dataroot, "testB"))
    labels_a, labels_b, labels_test = (os.path.join(dataroot, f"{split}_labels")
                                       for split in ("trainA", "trainB", "testB"))
    for paths, labels in ((train_a, labels_a), (train_b, labels_b), (test_b, labels_test)):
        image_files.match_by_stem(paths, labels)
    translated = translation.translate_images(
        translator, train_a, os.path.join(output_dir, TRANSLATED_A))
    arms = {RAW: (train_a, labels_a), TRANSLATED: (translated, labels_a),
            UPPER: (train_b, labels_b)}
    results = {}
    for name, (paths, labels) in arms.items():
        print(f"Segmenter on {name}: {len(paths)} images, {epochs} epoch(s)")
        model = segmenter.train_segmenter(paths, labels, epochs, batch_size, learning_rate,
                                          seed, width)
        results[name] = segmenter.scores_dict(segmenter.score_segmenter(
            model, test_b, labels_test, batch_size))
        if name == UPPER:
            segmenter.export_segmenter(model, os.path.join(output_dir, SEGMENTER_B))
    report = {
        "checkpoint": checkpoint, "dataroot": dataroot,
        "settings": dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         train_images=len(train_a), test_images=len(test_b), width=width,
                         seed=seed),
        "results": results,
    }
    reports.write_json(report, os.path.join(output_dir, REPORT))
    charts.bar_chart({name: r["mean_iou"] for name, r in results.items()},
                     os.path.join(output_dir, CHART), "Segmenter mean IoU on B's test split")
    return report


def format_table(report):
    """The report's scores as a Markdown table, one row per arm."""
    lines = ["| segmenter trained on | mean IoU | pixel accuracy | class accuracy |",
             "|---|---:|---:|---:|"]
    lines += [f"| {name} | {r['mean_iou']:.4f} | {r['pixel_accuracy']:.4f} | "
              f"{r['mean_class_accuracy']:.4f} |" for name, r in report["results"].items()]
    return "\n".join(lines)
