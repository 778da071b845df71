"""The study's fixed scorers: trained once, kept in git, used by every score.

A segmenter's training is deterministic on one machine but not across CPUs: oneDNN picks
other kernels on AVX2, AVX-512 or AMX, float32 sums round differently, and training
amplifies the difference into another network (docs/design/study.md, "Why the scorers are
committed"). So the instruments that judge every run are trained once, with op determinism
and a fixed thread count, and their weights are committed under STUDY_DIR/scorers/ with
their fingerprint, the hash of the data set they were trained and referenced on, and the
package versions:

    STUDY_DIR/scorers/label_scorer.npz   the B segmenter: label mIoU, and the feature space
                                         of KID / FID (segmenter)
    STUDY_DIR/scorers/scorers.json       its fingerprint and settings, the data hash, the
                                         versions, and the reference lines (floor, ceiling,
                                         untranslated testA, the ideal translation)

A study on another machine loads these, checks the fingerprint and that its data set hashes
the same, and refuses to score otherwise. A rendering that hashes otherwise because of the
renderer's last-bit differences between CPUs is accepted only once `add_rendering` has found
the recorded reference lines in it and recorded it (docs/design/study.md, "Data").
"""
import dataclasses
import os
import subprocess

import keras
import numpy as np
import PIL
import tensorflow as tf

from tfattncut import json_files, machine
from tfattncut.evaluation import segmenter
from tfattncut.models.segmenter import build_segmenter
from tfattncut.study import measures

SCORERS_JSON = "scorers.json"
LABEL_SCORER = "label_scorer.npz"
LABEL_SEED = 0  # the label scorer's initialisation and data order
DOWNSTREAM_SEEDS = (0, 1, 2)  # one downstream segmenter each, per run (tests use fewer)
KID_SEED = 0  # the reference lines' KID subsets (a run's use its own seed)
# Another rendering of the study's data set is the same data when the committed scorers
# measure every untranslated and ideal reference line in it within this (absolute, relative)
# tolerance of the recorded one. The renderer's B-style gamma once rounded differently on
# AVX-512 and AVX2 machines, which moved the lines by 1e-6 relative or less; another seed or
# size of the data set moves label mIoU by 1e-2 (docs/design/study.md, "Data").
RENDERING_TOLERANCE = (1e-4, 1e-5)


@dataclasses.dataclass(frozen=True)
class SegmenterSettings:
    """How the study's segmenters train: the downstream ones of every run (one per downstream
    seed, so their cost is the study's scoring cost) and, for `label_epochs`, the label
    scorer (trained once). Why these numbers: docs/design/study.md, "Measures"."""
    epochs: int = 10
    batch_size: int = 8
    learning_rate: float = 3e-3
    width: int = 32
    label_epochs: int = 20

    def fit(self, pixels, labels, seed):
        return segmenter.train_on_arrays(pixels, labels, self.epochs, self.batch_size,
                                         self.learning_rate, seed, self.width)


def versions():
    """The packages whose numerics a score depends on, and the commit of tfattncut's own
    code when it runs from a git checkout ("-dirty" with uncommitted changes; None outside
    one)."""
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "pillow": PIL.__version__, "tfattncut": _commit()}


def _commit():
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                              cwd=os.path.dirname(__file__), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def scorer_dir(study_dir):
    return os.path.join(study_dir, "scorers")


def has_scorers(study_dir):
    return os.path.exists(os.path.join(scorer_dir(study_dir), LABEL_SCORER))


def accepted_hashes(record):
    """The data hashes a scorers.json record accepts: its own and its added renderings'."""
    return (record["data_hash"], *record.get("renderings", {}))


class Scorers:
    """The loaded instruments: `label_scorer` (a Keras segmenter), its `fingerprint`, the
    `data_hash` of the rendering they score now (the recorded one or an added rendering),
    the `data_hashes` they accept and the `references` of scorers.json."""

    def __init__(self, label_scorer, record, data_hash=None):
        self.label_scorer = label_scorer
        self.record = record
        self.fingerprint = record["fingerprint"]
        self.data_hashes = accepted_hashes(record)
        self.data_hash = data_hash or record["data_hash"]
        self.references = record["references"]
        self.settings = SegmenterSettings(**record["segmenter_settings"])
        self.downstream_seeds = tuple(record["downstream_seeds"])
        self._features = {}

    def identity(self):
        """What every score file records about its scorers."""
        return {"scorer": self.fingerprint, "data_hash": self.data_hash}

    def reference_features(self, data, name):
        """The label scorer's features of a split (cached: testB is every run's reference)."""
        if name not in self._features:
            self._features[name] = segmenter.features(self.label_scorer,
                                                      data.split(name).pixels)
        return self._features[name]


def train_scorers(study_dir, data, settings, downstream_seeds=DOWNSTREAM_SEEDS):
    """Trains the label scorer on trainB, measures the reference lines, and writes both to
    STUDY_DIR/scorers/ (the weights last, so a file there means a finished set). Refused
    where scorers exist: every score refers to them."""
    if has_scorers(study_dir):
        raise FileExistsError(f"{scorer_dir(study_dir)} already holds the study's scorers; "
                              "every score refers to them, so they are never trained over "
                              "(delete the folder to start anew)")
    train_a, train_b = data.split("train_a"), data.split("train_b")
    model = dataclasses.replace(settings, epochs=settings.label_epochs).fit(
        train_b.pixels, train_b.labels, LABEL_SEED)
    weights = model.get_weights()
    record = {
        "fingerprint": segmenter.fingerprint(weights), "data_hash": data.hash,
        "label_seed": LABEL_SEED, "downstream_seeds": list(downstream_seeds),
        "segmenter_settings": dataclasses.asdict(settings), "versions": versions(),
        "machine": machine.describe(),
    }
    scorers = Scorers(model, {**record, "references": {}})
    record["references"] = {
        "floor": measures.downstream(scorers, data, train_a.pixels, train_a.labels),
        "ceiling": measures.downstream(scorers, data, train_b.pixels, train_b.labels),
        **_translation_references(scorers, data),
    }
    directory = scorer_dir(study_dir)
    os.makedirs(directory, exist_ok=True)
    json_files.write_atomic(record, os.path.join(directory, SCORERS_JSON), sort_keys=True)
    partial = os.path.join(directory, "partial-" + LABEL_SCORER)
    np.savez(partial, *weights)
    os.replace(partial, os.path.join(directory, LABEL_SCORER))
    return Scorers(model, record)


def load_scorers(study_dir, data):
    """The committed scorers of STUDY_DIR, checked: the weights must have the recorded
    fingerprint and `data` the recorded hash or that of an added rendering, or no score could
    be compared with the rest."""
    model, record = _load(study_dir)
    if data.hash not in accepted_hashes(record):
        raise ValueError(
            f"--dataroot={data.dataroot} hashes to {data.hash} but the scorers in "
            f"{scorer_dir(study_dir)} were made on data hashing to {record['data_hash']}: "
            "scores on other data are not comparable; delete that folder and launch.study "
            "renders the study's data set again (every image is a pure function of its "
            "index). If it was rendered on another kind of CPU, `launch.study "
            "--add_rendering` checks that the scorers measure the same reference lines in "
            "it and records it (docs/design/study.md, \"Data\")")
    return Scorers(model, record, data.hash)


def add_rendering(study_dir, data):
    """Records `data`, a rendering of the study's data set that hashes otherwise than the
    scorers' own, in scorers.json when the committed scorers measure each of its
    untranslated and ideal reference lines within RENDERING_TOLERANCE of the recorded ones;
    otherwise a ValueError names the lines that differ and nothing is written.

    Returns {line.metric: (recorded, measured)} of every compared value."""
    model, record = _load(study_dir)
    if data.hash in accepted_hashes(record):
        raise ValueError(f"--dataroot={data.dataroot} (data {data.hash}) is already one of "
                         f"the renderings the scorers in {scorer_dir(study_dir)} accept")
    scorers = Scorers(model, record, data.hash)
    measured = _translation_references(scorers, data)
    absolute, relative = RENDERING_TOLERANCE
    compared, differ = {}, []
    for line, values in measured.items():
        for metric, value in values.items():
            recorded = record["references"][line][metric]
            compared[f"{line}.{metric}"] = (recorded, value)
            if not abs(value - recorded) <= absolute + relative * abs(recorded):
                differ.append(f"{line} {metric} {value:.6g} (recorded {recorded:.6g})")
    if differ:
        raise ValueError(f"--dataroot={data.dataroot} (data {data.hash}) is not the data the "
                         f"scorers in {scorer_dir(study_dir)} were made on: "
                         + "; ".join(differ) + f" (tolerance {absolute} + {relative} x the "
                         "recorded value)")
    record.setdefault("renderings", {})[data.hash] = {
        "machine": machine.describe(), "versions": versions(), "references": measured}
    json_files.write_atomic(record, os.path.join(scorer_dir(study_dir), SCORERS_JSON),
                            sort_keys=True)
    return compared


def _translation_references(scorers, data):
    """The reference lines that need no training: the untranslated testA and the ideal
    translation (testA_as_B) as translations."""
    # testA_as_B against itself has no PSNR (infinite) nor SSIM (1) worth a line.
    return {"untranslated": measures.translation_scores(
                scorers, data, data.split("test_a").pixels, KID_SEED),
            "ideal": {key: value for key, value in measures.translation_scores(
                scorers, data, data.split("test_a_as_b").pixels, KID_SEED).items()
                if key not in ("psnr", "ssim")}}


def _load(study_dir):
    """(label scorer, scorers.json's record) of STUDY_DIR, the weights checked against the
    recorded fingerprint."""
    directory = scorer_dir(study_dir)
    json_path = os.path.join(directory, SCORERS_JSON)
    weights_path = os.path.join(directory, LABEL_SCORER)
    if not os.path.exists(weights_path):
        raise FileNotFoundError(f"{weights_path} does not exist: train the study's scorers "
                                "once with `launch.study --train_scorers` and commit them")
    record = json_files.read_object(json_path, "the scorers are trained with launch.study "
                                               "--train_scorers")
    missing = [key for key in ("fingerprint", "data_hash", "segmenter_settings", "label_seed",
                               "downstream_seeds", "references") if key not in record]
    if missing:
        raise ValueError(f"{json_path} has no {', '.join(missing)}: not the record "
                         "`launch.study --train_scorers` writes beside its weights")
    with np.load(weights_path) as stored:
        weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    found = segmenter.fingerprint(weights)
    if found != record["fingerprint"]:
        raise ValueError(f"{weights_path} has fingerprint {found} but {json_path} records "
                         f"{record['fingerprint']}: the two files belong to different scorers")
    settings = SegmenterSettings(**record["segmenter_settings"])
    model = build_segmenter(width=settings.width, seed=record["label_seed"])
    model.set_weights(weights)
    return model, record
