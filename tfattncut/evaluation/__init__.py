"""Evaluation on top of `tfattncut.metrics`: `evaluate` (metric reports between image sets,
and of a translator on a data set's test split), `segmenter` (the small segmentation network
of the downstream experiment), `downstream` (that experiment), `compare` (several runs in one
table and plot); `images` and `charts` are their shared file and drawing helpers."""
