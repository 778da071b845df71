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
the same, and refuses to score otherwise.
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


class Scorers:
    """The loaded instruments: `label_scorer` (a Keras segmenter), its `fingerprint`, the
    `data_hash` they belong to and the `references` of scorers.json."""

    def __init__(self, label_scorer, record):
        self.label_scorer = label_scorer
        self.record = record
        self.fingerprint = record["fingerprint"]
        self.data_hash = record["data_hash"]
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
    test_a = data.split("test_a")
    record["references"] = {
        "floor": measures.downstream(scorers, data, train_a.pixels, train_a.labels),
        "ceiling": measures.downstream(scorers, data, train_b.pixels, train_b.labels),
        "untranslated": measures.translation_scores(scorers, data, test_a.pixels, KID_SEED),
        # testA_as_B against itself has no PSNR (infinite) nor SSIM (1) worth a line.
        "ideal": {key: value for key, value in measures.translation_scores(
            scorers, data, data.split("test_a_as_b").pixels, KID_SEED).items()
            if key not in ("psnr", "ssim")},
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
    fingerprint and `data` the recorded hash, or no score could be compared with the rest."""
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
    if data.hash != record["data_hash"]:
        raise ValueError(
            f"--dataroot={data.dataroot} hashes to {data.hash} but the scorers in {directory} "
            f"were made on data hashing to {record['data_hash']}: scores on other data are "
            "not comparable; delete that folder and launch.study renders the study's data set "
            "again (every image is a pure function of its index)")
    settings = SegmenterSettings(**record["segmenter_settings"])
    model = build_segmenter(width=settings.width, seed=record["label_seed"])
    model.set_weights(weights)
    return Scorers(model, record)
