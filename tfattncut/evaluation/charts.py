"""Bar and line charts and labelled image sheets, drawn with Pillow.

matplotlib is not a dependency of tfattncut and two plain charts do not justify one, so the
axes, ticks and legends are drawn here: a bar chart (the downstream experiment), panels of
lines (launch.compare: a metric against the epoch, one line per run), and image columns
under named headers (a training run's sample sheet).
"""
import math

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from tfattncut import pixels

# matplotlib's tab10: distinguishable, and familiar from papers' plots.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_MARGIN = dict(left=70, top=36, right=20, bottom=48)
_GRID = (225, 225, 225)
_INK = (40, 40, 40)


def _font(size=13):
    return ImageFont.load_default(size=size)


def nice_ticks(low, high, count=5, integer=False):
    """About `count` round tick values (1, 2 or 5 x 10^k apart; at least 1 with `integer`)
    covering [low, high]."""
    if not high > low:
        low, high = low - 1.0, high + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(step, 1)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _label(value):
    return f"{value:.4g}"


class _Axes:
    """Maps data coordinates into the pixel box (left, top, right, bottom) and draws the
    frame, horizontal grid lines, y ticks and the title."""

    def __init__(self, draw, box, x_range, y_ticks, title):
        self.draw, self.box = draw, box
        self.x_range = x_range
        self.y_range = (y_ticks[0], y_ticks[-1])
        left, top, right, bottom = box
        font = _font()
        for tick in y_ticks:
            y = self.y(tick)
            draw.line([(left, y), (right, y)], fill=_GRID)
            draw.text((left - 6, y), _label(tick), fill=_INK, font=font, anchor="rm")
        draw.rectangle(box, outline=_INK)
        draw.text(((left + right) / 2, top - 10), title, fill=_INK, font=_font(15),
                  anchor="ms")

    def x(self, value):
        (low, high), (left, _, right, _) = self.x_range, self.box
        return left + (value - low) / ((high - low) or 1.0) * (right - left)

    def y(self, value):
        (low, high), (_, top, _, bottom) = self.y_range, self.box
        return bottom - (value - low) / (high - low) * (bottom - top)


def fit(images, size):
    """[..., H, W, C] resized (bilinear) to `size` (H, W) unless already that size, to show
    images of different sizes (--preprocess=none) side by side."""
    return images if tuple(images.shape[-3:-1]) == tuple(size) else tf.image.resize(images, size)


def image_columns(columns, header_height=20):
    """A sheet of images in columns, each column named in a header row, so that the picture
    explains itself.

    columns: [(name, [N, H, W, 3] float in [-1, 1])], one H and W for all; a column with
      fewer images than the longest leaves its lower cells white.
    Returns uint8 [header_height + N·H, len(columns)·W, 3]. Names are drawn at 13 px, or
    smaller down to 7 px where a name is wider than its column.
    """
    tiles = [pixels.to_uint8(images).numpy() for _, images in columns]
    height, width = tiles[0].shape[1:3]
    canvas = Image.new("RGB", (width * len(tiles), header_height + height *
                               max(len(t) for t in tiles)), "white")
    draw = ImageDraw.Draw(canvas)
    for column, ((name, _), images) in enumerate(zip(columns, tiles)):
        size = 13
        while size > 7 and draw.textlength(name, font=_font(size)) > width - 4:
            size -= 1
        draw.text((column * width + width / 2, header_height / 2), name, fill=_INK,
                  font=_font(size), anchor="mm")
        for row, image in enumerate(images):
            canvas.paste(Image.fromarray(image), (column * width, header_height + row * height))
    return np.asarray(canvas)


def bar_chart(values, path, title):
    """Writes a PNG with one bar per entry of `values` {label: float}, each with its value
    on top; the y axis starts at 0. Returns path."""
    slot = 150
    width = _MARGIN["left"] + _MARGIN["right"] + slot * len(values)
    height = 400
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    box = (_MARGIN["left"], _MARGIN["top"], width - _MARGIN["right"],
           height - _MARGIN["bottom"])
    axes = _Axes(draw, box, (0, len(values)), nice_ticks(0.0, max(values.values())), title)
    font = _font()
    for index, (label, value) in enumerate(values.items()):
        centre = axes.x(index + 0.5)
        draw.rectangle([centre - slot * 0.3, axes.y(value), centre + slot * 0.3, axes.y(0)],
                       fill=PALETTE[index % len(PALETTE)])
        draw.text((centre, axes.y(value) - 4), f"{value:.3f}", fill=_INK, font=font,
                  anchor="ms")
        draw.text((centre, box[3] + 8), label, fill=_INK, font=font, anchor="ma")
    image.save(path)
    return path


def line_chart(panels, path, xlabel="epoch"):
    """Writes a PNG with one panel per entry of `panels` {title: {series: [(x, y), ...]}},
    stacked vertically; a series has one colour in every panel, named in the legend at the
    bottom. Returns path."""
    names = list(dict.fromkeys(name for series in panels.values() for name in series))
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    panel_width, panel_height = 640, 260
    legend_height = 22 * len(names) + 10
    image = Image.new("RGB", (panel_width, panel_height * len(panels) + legend_height), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    for row, (title, series) in enumerate(panels.items()):
        points = [p for line in series.values() for p in line]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        top = row * panel_height
        box = (_MARGIN["left"], top + _MARGIN["top"], panel_width - _MARGIN["right"],
               top + panel_height - _MARGIN["bottom"])
        x_ticks = nice_ticks(min(xs), max(xs), integer=all(isinstance(x, int) for x in xs))
        axes = _Axes(draw, box, (x_ticks[0], x_ticks[-1]), nice_ticks(min(ys), max(ys)), title)
        for tick in x_ticks:
            draw.text((axes.x(tick), box[3] + 6), _label(tick), fill=_INK, font=font, anchor="ma")
        draw.text(((box[0] + box[2]) / 2, box[3] + 24), xlabel, fill=_INK, font=font,
                  anchor="ma")
        for name, line in series.items():
            pixels = [(axes.x(x), axes.y(y)) for x, y in sorted(line)]
            if len(pixels) > 1:
                draw.line(pixels, fill=colours[name], width=2)
            for x, y in pixels:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colours[name])
    for index, name in enumerate(names):
        y = panel_height * len(panels) + 10 + 22 * index
        draw.rectangle([_MARGIN["left"], y, _MARGIN["left"] + 14, y + 14], fill=colours[name])
        draw.text((_MARGIN["left"] + 22, y + 7), name, fill=_INK, font=font, anchor="lm")
    image.save(path)
    return path
