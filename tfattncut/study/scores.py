"""The study's score files: where they live, which of them may be read together, and which
runs "returned their input" (docs/design/study.md, "Score files").

Scores are comparable only when one set of scorers measured them on one data set, so every
score file records the scorers' fingerprint and the data hash, and reading refuses a file
whose pair differs from the committed scorers' (one line naming the file and both pairs).
"""
import glob
import os

from tfattncut import json_files

# A run "returns its input" (a collapse, e.g. an attention mask gone to zero) when its
# translated testA differs from testA by less than this mean |difference| in [0, 1] (5/255;
# the translations of the study differ by 0.15 or more). The distance alone decides: a label
# mIoU near the untranslated testA's is no sign of it (docs/design/study.md, "Measures").
COLLAPSE_DISTANCE = 0.02


def score_path(study_dir, name):
    return os.path.join(study_dir, "scores", f"{name}.json")


def _score_files(study_dir):
    """(run name, path) of every score file of STUDY_DIR, in name order: score_path's inverse."""
    for path in sorted(glob.glob(score_path(study_dir, "*"))):
        yield os.path.basename(path)[:-len(".json")], path


def check_merged(study_dirs):
    """ValueError naming the --merge folders that hold no score file: a mistyped folder
    would otherwise leave its runs out of the report without a word."""
    empty = [d for d in study_dirs if next(_score_files(d), None) is None]
    if empty:
        raise ValueError(f"--merge: {', '.join(empty)} holds no score file "
                         f"({score_path('DIR', 'RUN')}); name study folders of other machines")


def _read(path):
    again = "delete it and the study scores that run again"
    record = json_files.read_object(path, again)
    missing = [key for key in ("variant", "seed", "stage", "scorer", "data_hash", "machine")
               if key not in record]
    if missing:
        raise ValueError(f"{path} is not a score file of this study (no {', '.join(missing)}); "
                         f"{again}")
    return record


def load(study_dirs, scorers):
    """{run name: score record} of every scores/*.json in `study_dirs`, all measured by
    `scorers` (a `scorers.Scorers`) on a rendering of its data; a run scored twice, or a file
    measured by other scorers or on other data, is an error naming the files."""
    records, sources = {}, {}
    for directory in study_dirs:
        for name, path in _score_files(directory):
            record = _read(path)
            if (record["scorer"] != scorers.fingerprint
                    or record["data_hash"] not in scorers.data_hashes):
                raise ValueError(
                    f"{path} was measured with scorer {record['scorer']} on data "
                    f"{record['data_hash']}, the committed scorers are {scorers.fingerprint} "
                    f"on {' or '.join(scorers.data_hashes)}: its scores are not comparable; "
                    "score the run again (delete the file) or leave that folder out")
            if name in sources:
                raise ValueError(f"{name} was scored twice: {sources[name]} and {path}; keep one")
            records[name], sources[name] = record, path
    return records


def collapsed(record):
    """Whether a scored run returned its input (COLLAPSE_DISTANCE)."""
    return record["input_distance"] < COLLAPSE_DISTANCE


def read_records(study_dir):
    """{run name: score record} of STUDY_DIR/scores, unchecked: what planning reads (which
    runs are done, which arms the screen chose), never what a report shows."""
    return {name: _read(path) for name, path in _score_files(study_dir)}
