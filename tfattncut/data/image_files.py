"""Image modules, files on disk: list a folder, pair files by stem, decode one file.

Image files: which files a folder holds (`list_images`, as the reference lists them), which
file of another folder goes with each (`match_by_stem`: label maps, paired targets), and how
one file decodes to uint8 pixels (`read_image` in tf.data pipelines, `load_image` for
inference), the same reader in training, caching and inference so no path changes a pixel.
"""
import io
import os
import re

import numpy as np
import tensorflow as tf
from PIL import Image

from tfattncut.pixels import from_uint8

# The reference's IMG_EXTENSIONS plus .gif, in any case (the reference takes only all-lower or
# all-upper case, and no .gif: a superset, so the two list the same files unless a folder
# holds .gif or mixed-case names such as .Jpg).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".gif")
READABLE_FORMATS = "JPEG, PNG, BMP, GIF, TIFF or PPM/PGM/PBM"
# What a decoder's error carries beside its reason: an eager op's "{{function_node ...}}"
# and "[Op:DecodeImage] name:", and TF's list of its own formats (not a reader's, which may
# take more through Pillow).
_DECODER_NOISE = re.compile(r"^\{\{[^}]*\}\}\s*|\s*One of [^.]* required\.|\s*\[Op:.*$",
                            re.DOTALL)


def list_images(folder, max_dataset_size=0):
    """Sorted paths of the images (by extension, any case) in `folder` and its subfolders.

    As the reference's `sorted(make_dataset(folder, max_dataset_size))`: folders in sorted
    path order (symbolic links followed), each folder's files in directory order, the first
    `max_dataset_size` of those kept (0: all), then sorted. So a cap keeps the files the
    reference would train on, which are not always the first ones in sorted order.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Image folder {folder} does not exist; expected a folder of "
                                f"{'/'.join(IMAGE_EXTENSIONS)} files")
    paths = [os.path.join(root, name) for root, names in sorted(_walk_once(folder))
             for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
        raise ValueError(f"Image folder {folder} has no images (subfolders included); "
                         f"expected files ending in {', '.join(IMAGE_EXTENSIONS)} (any case)")
    return sorted(paths[:max_dataset_size] if max_dataset_size else paths)


def stem(path):
    """A file's name without folder and extension: what pairs files across folders."""
    return os.path.splitext(os.path.basename(path))[0]


def match_by_stem(paths, folder, flag=None):
    """For each path, the image file in `folder` with the same stem (any image extension).

    flag: the command-line flag that named `folder`, for the error message (None: the folder
    is named alone).
    """
    by_stem = {stem(path): path for path in list_images(folder)}
    missing = [path for path in paths if stem(path) not in by_stem]
    if missing:
        raise FileNotFoundError(
            f"{f'{flag}={folder}' if flag else folder} has no file for {len(missing)} of the "
            f"{len(paths)} images, e.g. {missing[0]} (expected {stem(missing[0])}.png or "
            "another image extension).")
    return [by_stem[stem(path)] for path in paths]


def _walk_once(folder):
    """(folder, file names) of `folder` and its subfolders, symbolic links followed, each
    real folder once: a link back up (trainA/up -> ..) would repeat the files without end."""
    seen = set()
    for root, subfolders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()  # which of two links to one folder is kept does not vary
        yield root, names


# Leading bytes of the formats only Pillow reads: TIFF (classic and BigTIFF, either byte order)
# and Netpbm (P1-P6 then whitespace; .ppm files may hold any of them, as in the reference).
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
_NETPBM_MAGIC = b"P[1-6][[:space:]#]"


def read_image(path):
    """An image file's path (scalar string) -> uint8 [H, W, 3], any of READABLE_FORMATS.

    TIFF and Netpbm, which TF cannot decode, go through Pillow's convert('RGB') (the
    reference's loader) in a tf.numpy_function, so this runs in tf.data pipelines but cannot
    be saved in a SavedModel (whose encoded-image signature uses `decode_image`).
    """
    contents = tf.io.read_file(path)
    needs_pillow = (
        tf.reduce_any(tf.equal(tf.strings.substr(contents, 0, 4), _TIFF_MAGIC))
        | tf.strings.regex_full_match(tf.strings.substr(contents, 0, 3), _NETPBM_MAGIC))
    image = tf.cond(needs_pillow,
                    lambda: tf.numpy_function(_pillow_rgb, [tf.io.decode_raw(contents, tf.uint8)],
                                              tf.uint8, stateful=False),
                    lambda: decode_image(contents))
    image.set_shape([None, None, 3])
    return image


def _pillow_rgb(contents):
    """uint8 [N] encoded bytes -> uint8 [H, W, 3], decoded by Pillow (first frame).

    Bytes go in as uint8: tf.numpy_function hands a string over as `bytes` in graphs but as
    an object array eagerly.
    """
    with Image.open(io.BytesIO(contents.tobytes())) as image:
        return np.asarray(image.convert("RGB"))


def not_a_file(path):
    """What a path that os.path.isfile refuses is, as the end of a sentence."""
    if os.path.islink(path) and not os.path.exists(path):
        return "is a symbolic link that leads nowhere (dangling, or a loop)"
    if os.path.exists(path):
        return "is not a regular file (a folder, FIFO, socket or device)"
    return "does not exist"


def decode_image(contents):
    """Encoded JPEG/PNG/BMP/GIF bytes (scalar string) -> uint8 [H, W, 3], in TF ops only.

    Grayscale and palette images become RGB, alpha is dropped, 16-bit PNGs keep their top 8
    bits, GIFs give their first frame. JPEGs use the accurate integer IDCT, which matches
    Pillow's (the reference's) pixels exactly where TF's default fast IDCT is off by up to ~9
    levels. TF's BMP decoder returns the palette *indices* of 8-bit BMPs as gray, so those are
    looked up in the file's palette here.
    """
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    header = _bmp_header(contents)
    is_palette_bmp = ((header[0] == ord("B")) & (header[1] == ord("M"))
                      & (_little_endian(header, 14, 4) >= 40)  # BITMAPINFOHEADER or later
                      & (_little_endian(header, 28, 2) == 8))  # 8 bits per pixel
    return tf.cond(is_palette_bmp,
                   lambda: _lookup_bmp_palette(contents, header, image[..., 0]),
                   lambda: image)


def _bmp_header(contents):
    """int64 [54]: the first 54 bytes, zero-padded so short files of other formats still parse."""
    padded = tf.strings.join([tf.strings.substr(contents, 0, 54), b"\0" * 54])
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, 54), tf.uint8), tf.int64)


def _little_endian(header, offset, num_bytes):
    return sum(header[offset + k] * 256**k for k in range(num_bytes))


def _lookup_bmp_palette(contents, header, indices):
    """uint8 [H, W] palette indices -> uint8 [H, W, 3], palette entries being B, G, R, 0."""
    used = _little_endian(header, 46, 4)
    num_colours = tf.where(used > 0, used, 256)
    palette = tf.io.decode_raw(
        tf.strings.substr(contents, 14 + _little_endian(header, 14, 4), 4 * num_colours),
        tf.uint8)
    rgb = tf.reverse(tf.reshape(palette, [-1, 4])[:, :3], axis=[1])
    return tf.gather(rgb, tf.cast(indices, tf.int32))


def decode_failure(error):
    """Why TF could not decode an image (a tf.errors.OpError), in a sentence of its own."""
    return _DECODER_NOISE.sub("", error.message).strip() or "no reason given"


def load_image(path):
    """One image file -> float32 [H, W, 3] in [-1, 1], any size (for inference). A path that
    is no regular file is a FileNotFoundError saying what it is (`not_a_file`): a FIFO is
    never opened, since reading one blocks until something writes to it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file {path} {not_a_file(path)}")
    try:
        return from_uint8(read_image(path))
    except tf.errors.OpError as error:
        raise ValueError(f"Image file {path} cannot be decoded as {READABLE_FORMATS}: "
                         f"{decode_failure(error)}") from None
