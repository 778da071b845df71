"""Patch selectors: which positions of each NCE layer the contrastive loss compares.

`SELECTORS` maps each `--selector` value to its class. A non-random selector acts on the
NCE layers named by `--qs_layers` (default: the last two) and `random` on the others, as
QS-Attn does; adding a selector means adding a file and one entry here (--selector's
choices and the selectors' own flags are read from SELECTORS).
"""
from tfattncut.errors import InvalidValue
from tfattncut.selection.ablations import Informer, QSRandomRoute, QSSelectOnly, QSSelfRoute
from tfattncut.selection.bam import BAMSelector
from tfattncut.selection.external_attention import ExternalAttentionSelector
from tfattncut.selection.qsattn import QSGlobal, QSLocal, QSLocalGlobal
from tfattncut.selection.random import RandomSelector
from tfattncut.selection.self_attention import SelfAttentionSelector
from tfattncut.selection.triplet_attention import TripletAttentionSelector

SELECTORS = {
    "random": RandomSelector,
    "qs_global": QSGlobal,
    "qs_local": QSLocal,
    "qs_local_global": QSLocalGlobal,
    "qs_random_route": QSRandomRoute,
    "qs_select_only": QSSelectOnly,
    "qs_self_route": QSSelfRoute,
    "informer": Informer,
    "self_attention": SelfAttentionSelector,
    "external_attention": ExternalAttentionSelector,
    "bam": BAMSelector,
    "triplet_attention": TripletAttentionSelector,
}


def selected_layers(config):
    """Positions (in nce_layers) where config.selector acts: --qs_layers, default the last two."""
    if not config.qs_layers:
        return list(range(max(0, len(config.nce_layers) - 2), len(config.nce_layers)))
    unknown = [layer for layer in config.qs_layers if layer not in config.nce_layers]
    if unknown:
        raise InvalidValue(f"--qs_layers {list(config.qs_layers)} must be among --nce_layers "
                           f"{list(config.nce_layers)}; {unknown} are not")
    return [config.nce_layers.index(layer) for layer in config.qs_layers]


def make_selectors(config, channels):
    """One selector per NCE layer, given each layer's channel count: `config.selector`'s on
    the selected layers, `random` on the others, each built by its own `from_run_config`."""
    if config.selector not in SELECTORS:
        raise InvalidValue(f"--selector must be one of {', '.join(SELECTORS)}; "
                           f"got {config.selector!r}")
    chosen = set(selected_layers(config)) if config.selector != "random" else set()
    return [SELECTORS[config.selector if i in chosen else "random"].from_run_config(
                config, width, name=f"select_{i}")
            for i, width in enumerate(channels)]
