"""Image modules, sets for metrics: a folder as re-iterable batches for evaluation.

Image sets on disk for evaluation: re-iterable batches.

Metrics make several passes over a set (Inception features, SWD, PSNR/SSIM), so a set is a
re-iterable object that decodes one batch at a time rather than a one-shot generator or an
in-memory array: memory stays at one batch however large the set. Writing translations is
`tfattncut.translation`'s job.
"""
import tensorflow as tf

from tfattncut.data import image_files
from tfattncut.progress import Progress
from tfattncut.translation import load, resize_options

# Images per batch of an evaluation (Inception features, segmenter scores).
BATCH_SIZE = 16


class ImageSet:
    """Images of some files as batches [B, H, W, 3] float32 in [-1, 1], in file order.

    image_size: None keeps each image's size (then every batch must share one size), or N
      to resize every image to N x N (bicubic, antialiased: `transforms.test_transform`).
    """

    def __init__(self, paths, batch_size=BATCH_SIZE, image_size=None):
        if not paths:
            raise ValueError("An image set needs at least one image file; got none.")
        self.paths = list(paths)
        self.batch_size = batch_size
        self._options = resize_options(image_size)

    @classmethod
    def from_folder(cls, folder, batch_size=BATCH_SIZE, image_size=None):
        return cls(image_files.list_images(folder), batch_size, image_size)

    def __len__(self):
        return len(self.paths)

    def __iter__(self):
        for start in range(0, len(self.paths), self.batch_size):
            paths = self.paths[start:start + self.batch_size]
            images = [load(path, self._options) for path in paths]
            for path, image in zip(paths[1:], images[1:]):
                if image.shape != images[0].shape:
                    raise ValueError(
                        f"Images of one set must share a size to be batched: {paths[0]} is "
                        f"{images[0].shape[:2]} but {path} is {image.shape[:2]}; pass "
                        f"--image_size to resize them all.")
            yield tf.stack(images)


def with_progress(batches, total, what):
    """Yields the batches of `batches` while `Progress` counts `total` images (None: unknown)
    under the heading `what`."""
    progress = Progress(total, unit="image")
    progress.note(what)
    for batch in batches:
        progress.add(int(batch.shape[0]))
        yield batch
