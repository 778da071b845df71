"""What a run shows in TensorBoard: loss and lr scalars, image grids, weight histograms."""
import tensorflow as tf

from tfattncut import pixels
from tfattncut.evaluation import charts


def _displayable(images):
    """[-1, 1] -> [0, 1], clipped: what tf.summary.image expects of floats."""
    return tf.clip_by_value(pixels.to_unit_range(images), 0.0, 1.0)


# Images of the batch a grid shows, at most.
GRID_IMAGES = 4


def image_grids(images, rows):
    """Side-by-side image rows for TensorBoard.

    images: dict of [B, H, W, C] tensors in [-1, 1] (C = 3, or 1 for masks);
    rows: tag -> keys shown left to right; a row with a key missing from `images` is skipped.
    Returns tag -> [n, H, k·W, 3] in [0, 1]; H, W are the first key's (with
    --preprocess=none, real_B has its own size and is resized to fit the row).
    """
    grids = {}
    for tag, keys in rows.items():
        if all(key in images for key in keys):
            tiles = [images[key][:GRID_IMAGES] for key in keys]
            tiles = [tf.image.grayscale_to_rgb(t) if t.shape[-1] == 1 else t for t in tiles]
            tiles = [charts.fit(t, tiles[0].shape[1:3]) for t in tiles]
            grids[tag] = _displayable(tf.concat(tiles, axis=2))
    return grids


def write_scalars(step, losses, learning_rate):
    for name, value in losses.items():
        tf.summary.scalar(f"loss/{name}", value, step=step)
    tf.summary.scalar("lr", learning_rate, step=step)


def write_images(step, images, rows):
    for name, grid in image_grids(images, rows).items():
        tf.summary.image(name, grid, step=step, max_outputs=grid.shape[0])


def write_histograms(step, networks):
    """One histogram per weight tensor, tagged network/variable path."""
    for net_name, network in networks.items():
        for variable in network.trainable_variables:
            tf.summary.histogram(f"{net_name}/{variable.path}", variable, step=step)


def selection_overlay(images, indices, significance, grid):
    """Selected query positions over the source image, on the selector's significance.

    images: [B, H, W, 3] in [-1, 1]; indices: [B, P] flat positions on the feature grid
    (h, w); significance: [B, h·w] or None. Returns [B, H, W, 3] in [0, 1]: the image dimmed,
    the significance (normalised per image) in red, selected positions in green.
    """
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(indices)[0]
    cells = grid[0] * grid[1]
    selected = tf.reduce_max(tf.one_hot(indices, cells), axis=1)  # [B, h·w]

    def upsample(values, method):
        grid_values = tf.reshape(values, [batch, grid[0], grid[1], 1])
        return tf.image.resize(grid_values, [height, width], method=method)

    base = 0.5 * tf.image.rgb_to_grayscale(_displayable(images))
    red = base
    if significance is not None:
        low = tf.reduce_min(significance, axis=1, keepdims=True)
        high = tf.reduce_max(significance, axis=1, keepdims=True)
        red = base + 0.5 * upsample((significance - low) / (high - low + 1e-12), "bilinear")
    green = tf.maximum(base, upsample(selected, "nearest"))
    return tf.clip_by_value(tf.concat([red, green, base], axis=-1), 0.0, 1.0)


def write_diagnostics(step, images, diagnostics):
    """A method's `Diagnostics` of the step's images: its scalars under their own tags, its
    selection maps as `write_selection_maps` shows them over images["real_a"]."""
    for tag, value in diagnostics.scalars.items():
        tf.summary.scalar(tag, value, step=step)
    if diagnostics.selection_maps:
        write_selection_maps(step, images["real_a"], diagnostics.selection_maps)


def write_selection_maps(step, images, maps):
    """Per selector layer N (a SelectionMap each): the overlay image selection/layer_N and,
    for entropy-ranked selectors, the scalar selection/zero_entropy_fraction/layer_N."""
    for selection in maps:
        overlay = selection_overlay(images, selection.indices, selection.significance,
                                    selection.grid)
        tf.summary.image(f"selection/layer_{selection.layer}", overlay, step=step,
                         max_outputs=overlay.shape[0])
        if selection.zero_entropy_fraction is not None:
            tf.summary.scalar(f"selection/zero_entropy_fraction/layer_{selection.layer}",
                              selection.zero_entropy_fraction, step=step)
