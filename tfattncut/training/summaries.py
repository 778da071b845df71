"""What a run shows in TensorBoard: loss and lr scalars, image grids, weight histograms."""
import tensorflow as tf


def to_unit_range(images):
    """[-1, 1] -> [0, 1] for display."""
    return tf.clip_by_value((images + 1.0) / 2.0, 0.0, 1.0)


def image_grids(images, max_images=4):
    """Side-by-side rows: real A | fake B | real B, and real B | identity G(B) when present.

    images: dict of [B, H, W, 3] tensors in [-1, 1] -> dict name -> [n, H, k·W, 3] in [0, 1].
    """
    def row(names):
        return to_unit_range(tf.concat([images[n][:max_images] for n in names], axis=2))

    grids = {"translation/real_A|fake_B|real_B": row(["real_a", "fake_b", "real_b"])}
    if "idt_b" in images:
        grids["identity/real_B|idt_B"] = row(["real_b", "idt_b"])
    return grids


def write_scalars(step, losses, learning_rate):
    for name, value in losses.items():
        tf.summary.scalar(f"loss/{name}", value, step=step)
    tf.summary.scalar("lr", learning_rate, step=step)


def write_images(step, images):
    for name, grid in image_grids(images).items():
        tf.summary.image(name, grid, step=step, max_outputs=grid.shape[0])


def write_histograms(step, networks):
    """One histogram per weight tensor, tagged network/variable path."""
    for net_name, network in networks.items():
        for variable in network.trainable_variables:
            tf.summary.histogram(f"{net_name}/{variable.path}", variable, step=step)
