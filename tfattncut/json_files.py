"""Reading and writing the JSON files tfattncut writes (a run's config.json, study scores,
evaluation reports): one that is damaged (cut short by a copy between machines, edited by
hand) is one error naming the file and what to do, not a JSONDecodeError traceback; one that
is written is never left half-written, and never holds a number JSON cannot hold."""
import json
import math
import os


class NonFiniteValue(ValueError):
    """A value to write holds a NaN or infinite number, which JSON cannot hold."""


def read_object(path, remedy):
    """The JSON object in the file PATH; a ValueError naming PATH and `remedy` if the file
    holds anything else."""
    with open(path) as f:
        try:
            value = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}); {remedy}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds a JSON {type(value).__name__}, not an object; {remedy}")
    return value


def write_atomic(value, path, sort_keys=False):
    """Writes `value` as indented JSON to PATH, creating its folder: first
    beside it, then renamed into place, so a crash never leaves a half-written file. A NaN or
    infinite number is a NonFiniteValue naming its entry, raised before anything is written
    (Python would write a bare NaN that strict readers refuse). Keys keep their order (a
    report lists its arms as its reader expects) unless `sort_keys` (files kept in git, whose
    diffs should show only what changed). Returns PATH."""
    bad = non_finite(value)
    if bad:
        raise NonFiniteValue(f"Not writing {path}: "
                             f"{', '.join(f'{where} is {number}' for where, number in bad)}, "
                             f"which JSON cannot hold")
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(value, f, indent=2, sort_keys=sort_keys, allow_nan=False)
        f.write("\n")
    os.replace(partial, path)
    return path


def non_finite(value, where=""):
    """[(key path, value)] of the NaN and infinite floats in a JSON-ready value, e.g.
    [('metrics.swd', nan)]."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(where, value)]
    if isinstance(value, dict):
        items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{index}]", item) for index, item in enumerate(value))
    else:
        return []
    return [found for path, item in items for found in non_finite(item, path)]
