"""The bundled sim-to-real street scenes on disk (docs/design/synthetic.md): one example
(`render_example`) and the data set's writer (`generate_dataset`, `ensure_dataset`).

Real sim-to-real data (GTA5 -> Cityscapes) cannot ship, so we render our own: a "simulator"
domain A (flat saturated colours) and a "camera" domain B (textures, shading, blur, noise,
JPEG) of the same kind of scenes, unpaired, with Cityscapes label maps on both sides. The
scenes are tfattncut.data.street_scenes, their looks tfattncut.data.street_styles, the label
table tfattncut.data.labels.

Every image is a pure function of (seed, split, domain, index), so any one of them can be
regenerated alone and the set can be rendered in parallel with identical bytes, on any CPU
(docs/design/synthetic.md#determinism).
"""
import collections
import json
import multiprocessing
import os
import shutil

import numpy as np
from absl import logging
from PIL import Image

from tfattncut import output_folders
from tfattncut.data import street_scenes, street_styles
from tfattncut.data.labels import (CITYSCAPES_LABELS, CITYSCAPES_TRAIN_IDS, IGNORE_TRAIN_ID,
                                   TRAIN_LABELS)
from tfattncut.progress import Progress

Example = collections.namedtuple("Example", "image labels jpeg_quality")
_SPLITS = ("train", "test")
# testA_as_B: the geometry of testA's scene, rendered in the B style.
_DOMAINS = ("A", "B", "A_as_B")
MIN_SIZE = 64
# The bundled data set's defaults (configs/ and the README's demo use them).
DEFAULT_ROOT = "data/synth_street"
SIZE = 128
NUM_TRAIN = 1000
NUM_TEST = 100


def render_example(split, domain, index, size=SIZE, seed=0):
    """Renders one image of the data set, exactly as generate_dataset writes it.

    Args:
      split: "train" or "test".
      domain: "A" (simulator), "B" (camera) or "A_as_B" (the A scene in the B style).
    Returns:
      Example(image uint8 [size, size, 3], labels uint8 [size, size] Cityscapes label ids,
      jpeg_quality: the quality B images are saved at; None for A).
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}; got {split!r}")
    if domain not in _DOMAINS:
        raise ValueError(f"domain must be one of {_DOMAINS}; got {domain!r}")
    _check_size(size)
    geometry_domain = "A" if domain == "A_as_B" else domain

    def rng(domain, stream):
        return np.random.default_rng(
            [seed, _SPLITS.index(split), _DOMAINS.index(domain), index, stream])

    scene = street_scenes.draw_scene(rng(geometry_domain, 0), size)
    labels = street_scenes.label_map(scene)
    if domain == "A":
        return Example(street_styles.style_a(scene), labels, None)
    image, quality = street_styles.style_b(scene, rng(domain, 1))
    return Example(image, labels, quality)


def _check_size(size):
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE} (the scenes' windows, poles "
                         f"and lane marks need the room); got {size!r}")


MANIFEST = "manifest.json"
_LABELS_JSON, _README_TXT = "labels.json", "README.txt"
_FORMAT = "tfattncut-synthetic-street"
# Bump whenever the renderer's output changes, so ensure_dataset notices old sets.
_VERSION = 1
# Spawning workers costs about a second of imports; below this many images serial wins.
_MIN_PARALLEL_JOBS = 256


def _folders(num_train, num_test):
    """Folder -> (split, domain, count, labels folder or None) in writing order."""
    folders = {}
    for split, count in (("train", num_train), ("test", num_test)):
        for domain in ("A", "B"):
            folders[f"{split}{domain}"] = (split, domain, count, f"{split}{domain}_labels")
    folders["testA_as_B"] = ("test", "A_as_B", num_test, None)
    return folders


def _file_name(index, domain=None):
    """Image `index` of `domain` (None: its label map): PNG, and JPEG for the B-style images
    (render_example gives them a JPEG quality, as a camera would)."""
    return f"{index:06d}{'.jpg' if domain in ('B', 'A_as_B') else '.png'}"


def _own_files(manifest):
    """Folder -> the names of the files the set of `manifest` wrote there."""
    arguments = manifest["arguments"]
    names = {}
    for folder, (_, domain, count, labels_folder) in _folders(
            arguments["num_train"], arguments["num_test"]).items():
        names[folder] = {_file_name(index, domain) for index in range(count)}
        if labels_folder:
            names[labels_folder] = {_file_name(index) for index in range(count)}
    return names


def _write_example(job):
    root, folder, labels_folder, split, domain, index, size, seed = job
    example = render_example(split, domain, index, size, seed)
    options = {} if example.jpeg_quality is None else {"quality": example.jpeg_quality}
    Image.fromarray(example.image).save(os.path.join(root, folder, _file_name(index, domain)),
                                        **options)
    if labels_folder:
        Image.fromarray(example.labels).save(os.path.join(root, labels_folder,
                                                          _file_name(index)))


def _labels_json():
    by_id = {label.id: label for label in CITYSCAPES_LABELS}
    used = [by_id[i] for i in street_scenes.SCENE_LABEL_IDS]
    return {
        "labels": [dict(l._asdict(), color=list(l.color)) for l in used],
        "ignore_train_id": IGNORE_TRAIN_ID,
        "train_ids": {str(i): t for i, t in CITYSCAPES_TRAIN_IDS.items()},
        "train_classes": [{"train_id": l.train_id, "name": l.name, "color": list(l.color)}
                          for l in TRAIN_LABELS],
    }


_README = """\
tfattncut synthetic sim-to-real street scenes (tfattncut/data/synthetic.py).

Regenerate: python -m launch.make_synthetic --out=<this folder> --size={size} \\
    --num_train={num_train} --num_test={num_test} --seed={seed}

trainA, testA            domain A, "simulator": flat colours, PNG
trainB, testB            domain B, "camera": textures, blur, noise, JPEG (quality 75-90)
*_labels                 label maps (uint8 PNG, Cityscapes label ids, same stem as the image)
testA_as_B               each testA scene rendered in the B style (labels: testA_labels);
                         for paired fidelity metrics only, never for training
labels.json              the label ids, names, colours and the 19-class train-id mapping
manifest.json            the generation arguments and file counts; written last
A and B scenes are drawn independently: the training sets are unpaired.
"""


def _read_manifest(out_dir):
    try:
        with open(os.path.join(out_dir, MANIFEST)) as f:
            manifest = json.load(f)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == _FORMAT \
        else None


def _is_complete(out_dir, manifest):
    """Whether every file the set wrote is there (files a user added do not matter)."""
    for folder, names in _own_files(manifest).items():
        path = os.path.join(out_dir, folder)
        if not names <= (set(os.listdir(path)) if os.path.isdir(path) else set()):
            return False
    return True


def _foreign_entry(out_dir, manifest):
    """A file or folder in out_dir that the set of `manifest` did not write, or None: only
    its exact names are its own (a user's 1.png or 000002.tif beside 000002.png is not)."""
    own = _own_files(manifest)
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name)
        if name not in own and name not in (MANIFEST, _LABELS_JSON, _README_TXT):
            return path
        for entry in sorted(os.listdir(path)) if name in own else ():
            if entry not in own[name]:
                return os.path.join(path, entry)
    return None


def _check_arguments(size, num_train, num_test, seed):
    _check_size(size)
    for name, value in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")


def generate_dataset(out_dir, size=SIZE, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=0,
                     progress=True, num_workers=None, flag="--dataroot"):
    """Renders the whole data set into out_dir (layout: see _README).

    The set is built in a sibling folder and renamed into place, so a crash never leaves a
    set that looks complete. An earlier synthetic set in out_dir is replaced, unless it holds
    files the set did not write; any other non-empty out_dir is refused rather than
    overwritten.

    Args:
      size: image height and width in pixels, >= 64.
      num_train, num_test: images per domain in each split.
      progress: show the progress (tfattncut.progress).
      num_workers: processes; None: up to 2, and none for small sets.
      flag: the flag that named out_dir, for errors.
    Returns:
      {folder: number of files written}.
    """
    _check_arguments(size, num_train, num_test, seed)
    out_dir = os.path.normpath(out_dir)
    output_folders.check_output_folder(flag, out_dir)
    existing = _read_manifest(out_dir)
    if existing is None and os.path.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(f"{flag}={out_dir} holds files but no synthetic data set "
                              f"({MANIFEST}); the set is rendered only into an empty or new "
                              f"folder")
    foreign = existing and _foreign_entry(out_dir, existing)
    if foreign:
        raise FileExistsError(f"{flag}={out_dir} holds a synthetic data set and {foreign}, "
                              f"which the set did not write and replacing it would delete; "
                              f"move that out first or choose another folder")
    folders = _folders(num_train, num_test)
    tmp_dir = f"{out_dir}.partial-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    jobs = []
    for folder, (split, domain, count, labels_folder) in folders.items():
        for sub in (folder, labels_folder):
            if sub:
                os.makedirs(os.path.join(tmp_dir, sub))
        jobs += [(tmp_dir, folder, labels_folder, split, domain, i, size, seed)
                 for i in range(count)]
    if num_workers is None:
        num_workers = 1 if len(jobs) < _MIN_PARALLEL_JOBS else min(2, os.cpu_count() or 1)
    try:
        _run(jobs, num_workers, progress)
        with open(os.path.join(tmp_dir, _LABELS_JSON), "w") as f:
            json.dump(_labels_json(), f, indent=1)
        arguments = dict(size=size, num_train=num_train, num_test=num_test, seed=seed)
        with open(os.path.join(tmp_dir, _README_TXT), "w") as f:
            f.write(_README.format(**arguments))
        counts = {}
        for folder, (_, _, count, labels_folder) in folders.items():
            counts[folder] = count
            if labels_folder:
                counts[labels_folder] = count
        with open(os.path.join(tmp_dir, MANIFEST), "w") as f:
            json.dump({"format": _FORMAT, "version": _VERSION, "arguments": arguments,
                       "counts": counts}, f, indent=1)
        _move_into_place(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return counts


def _run(jobs, num_workers, progress):
    if num_workers <= 1:
        _report(map(_write_example, jobs), len(jobs), progress)
        return
    # spawn, not fork: the caller (the trainer) may have started TensorFlow's threads.
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
        _report(pool.imap_unordered(_write_example, jobs, chunksize=32), len(jobs), progress)


def _report(results, total, progress):
    """Consumes the results, counting them on a bar (a terminal) or in ten lines (a log)."""
    if not progress:
        collections.deque(results, maxlen=0)
        return
    bar = Progress(total, unit="image", every=max(1, total // 10))
    for _ in results:
        bar.add(1)


def _move_into_place(tmp_dir, out_dir):
    old = f"{out_dir}.old-{os.getpid()}"
    if os.path.isdir(out_dir):
        if os.listdir(out_dir):
            os.rename(out_dir, old)
        else:
            os.rmdir(out_dir)
    parent = os.path.dirname(out_dir)
    if parent:
        os.makedirs(parent, exist_ok=True)
    os.rename(tmp_dir, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def ensure_dataset(out_dir, size=SIZE, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=0,
                   progress=True, num_workers=None, flag="--dataroot"):
    """Generates the data set unless out_dir already holds a complete one; returns out_dir.

    A complete set made with other arguments is kept (with a warning) rather than silently
    replaced: it may be the one the user made on purpose with launch.make_synthetic.
    """
    _check_arguments(size, num_train, num_test, seed)
    manifest = _read_manifest(out_dir)
    if manifest is not None and _is_complete(out_dir, manifest):
        wanted = dict(size=size, num_train=num_train, num_test=num_test, seed=seed)
        if manifest["arguments"] != wanted or manifest["version"] != _VERSION:
            logging.warning("%s: keeping the synthetic set made with %s (renderer version %s); "
                            "asked for %s (version %s). Delete the folder to regenerate.",
                            out_dir, manifest["arguments"], manifest["version"], wanted,
                            _VERSION)
        return out_dir
    generate_dataset(out_dir, size, num_train, num_test, seed, progress, num_workers, flag)
    return out_dir
