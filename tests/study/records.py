"""Score records as the study writes them, for the tests of reading and reporting."""
import os

from tfattncut import json_files
from tfattncut.study import scores

SCORER = {"scorer": "0123456789abcdef", "data_hash": "fedcba9876543210"}
REFERENCES = {
    "floor": {"per_seed": {"0": 0.08}, "mean": 0.08},
    "ceiling": {"per_seed": {"0": 0.34}, "mean": 0.34},
    "untranslated": {"label_miou": 0.20, "kid_seg": 0.5, "fid_seg": 300.0, "psnr": 12.0,
                     "ssim": 0.3, "input_distance": 0.0},
    "ideal": {"label_miou": 0.45, "kid_seg": 0.01, "fid_seg": 2.0, "input_distance": 0.2},
}


class FakeScorers:
    """What summaries and readers need of `scorers.Scorers`, without a network."""
    fingerprint, data_hash = SCORER["scorer"], SCORER["data_hash"]
    data_hashes = (SCORER["data_hash"],)
    references = REFERENCES
    record = {"fingerprint": SCORER["scorer"], "data_hash": SCORER["data_hash"],
              "versions": {"tensorflow": "2.21.0"}, "machine": "a test"}

    def identity(self):
        return dict(SCORER)


def record(variant, seed, downstream, stage="screen", label=0.3, distance=0.2, factor=1,
           **changes):
    """A scored run."""
    values = {"variant": variant, "seed": seed, "stage": stage, "steps_factor": factor,
              "steps": 400 * factor, "model": "cut", "selector": "random", **SCORER,
              "downstream_miou": downstream, "label_miou": label, "kid_seg": 0.1,
              "fid_seg": 10.0, "psnr": 15.0, "ssim": 0.4, "input_distance": distance,
              "step_time_s": 1.5, "training_minutes": 10.0, "scoring_minutes": 2.0,
              "machine": "a test"}
    values.update(changes)
    return values


def write(study_dir, name, values):
    return json_files.write_atomic(values, scores.score_path(study_dir, name))


def write_runs(study_dir, runs):
    """{(variant, seed): downstream} of screen runs -> their score files."""
    for (variant, seed), downstream in runs.items():
        write(study_dir, f"{variant}_seed{seed}", record(variant, seed, downstream))
    return os.path.join(study_dir, "scores")
