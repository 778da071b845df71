"""Where each input's outputs go, and writing them so that a killed job leaves no partial
output: Beam FileSystems only, so local paths, gs:// and s3:// (where installed) all work.

An input PREFIX/REL/STEM.EXT matched by --input (PREFIX: the pattern up to the last "/"
before its first glob character) is translated into OUTPUT/REL/STEM.png (or .jpg); with
--labels=LABELS, its label map LABELS/REL/STEM.* is copied into OUTPUT_labels/REL/, the
CycleGAN layout `launch.translate --labels` writes. REL/STEM is the input's key: two inputs
with one key (x.png, x.jpg) would write one output.

Every file is written under a hidden temporary name beside its final one and renamed into
place, so an output that exists is complete; the temporaries of a killed job are deleted by
the next run that finishes.
"""
import dataclasses
import os
import posixpath
import re
import stat
import uuid
from typing import Optional

from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems

from tfattncut.data.image_files import not_a_file
from tfattncut.translation import labels_folder

FAILED_FILE = "_failed.jsonl"
# Which model (and --input) the outputs in OUTPUT are from: written before a job's first
# output, so a folder holding files but not this one is not a bulk job's output.
JOB_FILE = "_job.json"
_TEMP_MARK = ".bulk-tmp-"
_TEMP_NAME = re.compile(r"^\..+" + re.escape(_TEMP_MARK) + r"[0-9a-f]{32}$")
# As Beam's FileSystem.match: a pattern's literal part ends at its first glob character.
_LITERAL_PREFIX = re.compile(r"^[^[*?]*")


def local_absolute(path):
    """A local path or pattern made absolute and normal; a URL (gs://, s3://) as it is.
    Beam returns matches in the form the pattern has, and `Layout.is_output` compares
    prefixes, so --input and --output must be written alike."""
    return path if "://" in path else os.path.abspath(path)


def base_folder(pattern):
    """The folder that inputs' relative paths start from ('' or ending in '/'):
    'data/sim/**/*.png' -> 'data/sim/', 'gs://b/x/img*.png' -> 'gs://b/x/'."""
    literal = _LITERAL_PREFIX.match(pattern).group(0)
    return literal[:literal.rfind("/") + 1]


def relative_key(path, base):
    """REL/STEM of a file under `base` (its base name's stem if it is not under it)."""
    relative = path[len(base):] if base and path.startswith(base) else posixpath.basename(path)
    return posixpath.splitext(relative.lstrip("/"))[0]


@dataclasses.dataclass(frozen=True)
class Item:
    """One input and where its outputs go (label paths None without --labels)."""
    source: str
    key: str
    target: str
    label_source: Optional[str] = None
    label_target: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Layout:
    """The job's folders: --input's pattern, --output, --labels, the output extension."""
    input_pattern: str
    output: str
    labels: Optional[str] = None
    extension: str = "png"

    @property
    def input_base(self):
        return base_folder(self.input_pattern)

    @property
    def labels_base(self):
        return self.labels.rstrip("/") + "/"

    @property
    def labels_pattern(self):
        """Every file under --labels, at any depth (Beam's '**' spans folders)."""
        return self.labels_base + "**"

    @property
    def labels_output(self):
        return labels_folder(self.output)

    @property
    def failed_path(self):
        return FileSystems.join(self.output, FAILED_FILE)

    @property
    def job_path(self):
        return FileSystems.join(self.output, JOB_FILE)

    def is_output(self, path):
        """Whether `path` lies in the output folders (a job never translates its outputs)."""
        return any(path.startswith(folder.rstrip("/") + "/")
                   for folder in (self.output, self.labels_output))

    def item(self, source, label_source=None):
        key = relative_key(source, self.input_base)
        label_target = None if label_source is None else FileSystems.join(
            self.labels_output,
            posixpath.join(posixpath.dirname(key), posixpath.basename(label_source)))
        return Item(source, key, FileSystems.join(self.output, f"{key}.{self.extension}"),
                    label_source, label_target)


def read(path):
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def write_atomically(path, contents):
    """Writes `contents` to a hidden temporary beside `path`, then renames it onto `path`
    (replacing it: a retried write is harmless)."""
    folder, name = FileSystems.split(path)
    temp = FileSystems.join(folder, f".{name}{_TEMP_MARK}{uuid.uuid4().hex}")
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(contents)
    FileSystems.rename([temp], [path])


def _is_temporary(path):
    return bool(_TEMP_NAME.match(FileSystems.split(path)[1]))


def unreadable(path):
    """Why a local path cannot be read as a file, as the end of a sentence ("is a symbolic
    link that leads nowhere ..."), or None. A FIFO counts: reading one blocks until something
    writes to it. URLs (gs://, s3://) name objects, always readable files: None."""
    if "://" in path:
        return None
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return None
    except OSError:
        pass
    return not_a_file(path)


def unreadable_matches(pattern):
    """{path: `unreadable` reason} of the local paths `pattern` matches that are no regular
    file: Beam's match passes over links that lead nowhere without a word, and returns FIFOs,
    which would block the worker reading them."""
    if "://" in pattern:
        return {}
    matches = re.compile(FileSystem.translate_pattern(pattern))
    found = {}
    for folder, _, names in os.walk(base_folder(pattern) or "."):  # Beam's walk: links to
        for name in names:  # folders are not followed
            path = os.path.join(folder, name)
            if matches.match(path) and (reason := unreadable(path)):
                found[path] = reason
    return found


def find_files(folders):
    """The sorted paths of the files in `folders` (any depth), temporaries of killed writes
    left out: they are no output."""
    patterns = [FileSystems.join(folder, "**") for folder in folders]
    return sorted(metadata.path for result in FileSystems.match(patterns)
                  for metadata in result.metadata_list if not _is_temporary(metadata.path))


def remove_temporaries(folders):
    """Deletes the temporaries that killed writes left in `folders` (any depth); returns
    their paths. Run it when no job is writing there."""
    patterns = [FileSystems.join(folder, "**" + _TEMP_MARK + "*") for folder in folders]
    stale = sorted(metadata.path for result in FileSystems.match(patterns)
                   for metadata in result.metadata_list
                   if _is_temporary(metadata.path))
    if stale:
        FileSystems.delete(stale)
    return stale
