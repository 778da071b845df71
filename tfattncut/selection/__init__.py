"""Patch selectors: which positions of each NCE layer the contrastive loss compares.

`SELECTORS` maps each `--selector` value to its class; a non-random selector acts on the
layers named by `--qs_layers` (default: the last two NCE layers) and `random` on the rest.
"""
from tfattncut.selection.random import RandomSelector

SELECTORS = {
    "random": RandomSelector,
}


def make_selectors(config, channels):
    """One selector per NCE layer for `config.selector`, given each layer's channel count."""
    if config.selector not in SELECTORS:
        raise ValueError(f"--selector must be one of {', '.join(SELECTORS)}; "
                         f"got {config.selector!r}")
    return [RandomSelector(config.num_patches, name=f"select_{i}")
            for i, _ in enumerate(channels)]
