"""Checks on the folders a command writes into, made before any work: a path that cannot
become a folder, or files that writing would replace, fail at once with an error naming the
flag rather than after the work, with a traceback or a lost file."""
import os

from tfattncut.errors import ExistingPath, NotAFolder


def check_output_folder(flag, path):
    """Refuses an output folder flag whose path, or a folder above it, is a file: os.makedirs
    would fail there only after the work was done, with a traceback."""
    probe = os.path.abspath(path)
    while not os.path.lexists(probe):  # a dangling link blocks makedirs too
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise NotAFolder(f"{flag}={path}: {probe} exists and is not a folder; name a folder "
                         f"(it is created if missing)")


def check_not_replacing(flag, folder, targets, overwrite):
    """Refuses writing `targets` (the files a command would write in FLAG's folder) when any
    exists, unless `overwrite`: a mistyped folder must not lose a data set's files, while
    --overwrite replaces an earlier run's."""
    existing = [] if overwrite else [t for t in targets if os.path.lexists(t)]
    if existing:
        more = (f", and {len(existing) - 1} more files this would replace"
                if len(existing) > 1 else "")
        raise ExistingPath(f"{flag}={folder}: {existing[0]} exists{more}; pass --overwrite "
                           f"to replace them, or choose another {flag}")
