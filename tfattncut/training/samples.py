"""The sample sheet a training run leaves in RUN/samples/step_N.png: the first test images of
the source domain, their translations, and as many real test images of the target domain
(unpaired: what translations should look like), side by side under a header naming the
columns."""
import os

import tensorflow as tf
from absl import logging

from tfattncut.data import image_files, transforms
from tfattncut.evaluation import charts, evaluate
from tfattncut.inference import translate


# Test images a sample sheet shows per domain, at most.
SHEET_IMAGES = 8


def write_sample_sheet(generator, config, step):
    """Writes the sheet of `generator` (a run's translator) at `step` into config.run_dir and
    returns its path; None when the data set has no source test split. Without a target test
    split the sheet has no real column."""
    found = evaluate.test_split_folders(config.dataroot, config.direction)

    def first_images(folder):
        """[N, crop, crop, 3] of the folder's first images; None without images."""
        try:
            paths = image_files.list_images(folder)[:SHEET_IMAGES]
        except (FileNotFoundError, ValueError):
            logging.info("No images in %s for the sample sheet", folder)
            return None
        views = [transforms.test_transform(image_files.load_image(p), config)
                 for p in paths]  # with --preprocess=none, each its own size
        return tf.stack([charts.fit(view, views[0].shape[:2]) for view in views])

    images = first_images(found["source"])
    if images is None:
        return None
    source, target = (os.path.basename(found[k]) for k in ("source", "real"))  # testA, ...
    columns = [(f"input ({source})", images),
               ("translation", translate(generator, images)),
               (f"real {target[-1]} ({target})", first_images(found["real"]))]
    path = os.path.join(config.run_dir, "samples", f"step_{step}.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sheet = charts.image_columns([(name, charts.fit(column, images.shape[1:3]))
                                  for name, column in columns if column is not None])
    tf.io.write_file(path, tf.io.encode_png(sheet))
    return path
