"""Patch selectors: which positions of each NCE layer the contrastive loss compares.

`SELECTORS` maps each `--selector` value to its class. A non-random selector acts on the
NCE layers named by `--qs_layers` (default: the last two) and `random` on the others, as
QS-Attn does; adding a selector means adding a file and one entry here (--selector's
choices are read from SELECTORS).
"""
from tfattncut.layers import make_initializer
from tfattncut.selection.ablations import Informer, QSRandomRoute, QSSelectOnly, QSSelfRoute
from tfattncut.selection.bam import BAMSelector
from tfattncut.selection.external_attention import ExternalAttentionSelector
from tfattncut.selection.qsattn import QSGlobal, QSLocal, QSLocalGlobal
from tfattncut.selection.random import RandomSelector
from tfattncut.selection.self_attention import SelfAttentionSelector
from tfattncut.selection.triplet_attention import TripletAttentionSelector

QS_SELECTORS = {
    "qs_global": QSGlobal,
    "qs_local": QSLocal,
    "qs_local_global": QSLocalGlobal,
    "qs_random_route": QSRandomRoute,
    "qs_select_only": QSSelectOnly,
    "qs_self_route": QSSelfRoute,
    "informer": Informer,
}
ATTENTION_MODULES = {
    "self_attention": SelfAttentionSelector,
    "external_attention": ExternalAttentionSelector,
    "bam": BAMSelector,
    "triplet_attention": TripletAttentionSelector,
}
SELECTORS = {"random": RandomSelector, **QS_SELECTORS, **ATTENTION_MODULES}


def selected_layers(config):
    """Positions (in nce_layers) where config.selector acts: --qs_layers, default the last two."""
    if not config.qs_layers:
        return list(range(max(0, len(config.nce_layers) - 2), len(config.nce_layers)))
    unknown = [layer for layer in config.qs_layers if layer not in config.nce_layers]
    if unknown:
        raise ValueError(f"--qs_layers {list(config.qs_layers)} must be among --nce_layers "
                         f"{list(config.nce_layers)}; {unknown} are not")
    return [config.nce_layers.index(layer) for layer in config.qs_layers]


def make_selectors(config, channels):
    """One selector per NCE layer for `config.selector`, given each layer's channel count."""
    if config.selector not in SELECTORS:
        raise ValueError(f"--selector must be one of {', '.join(SELECTORS)}; "
                         f"got {config.selector!r}")
    chosen = set(selected_layers(config)) if config.selector != "random" else set()
    selectors = []
    for i, width in enumerate(channels):
        name = f"select_{i}"
        if i not in chosen:
            selectors.append(RandomSelector(config.num_patches, name=name))
        elif config.selector in QS_SELECTORS:
            options = ({"block_size": config.qs_block_size} if config.qs_block_size
                       else {"blocked": False})
            options["tie_break"] = config.qs_tie_break
            if config.selector in ("qs_local", "qs_local_global"):
                options["layout"] = config.qs_local_layout
            selectors.append(QS_SELECTORS[config.selector](config.num_patches, name=name,
                                                           **options))
        else:
            selectors.append(ATTENTION_MODULES[config.selector](
                config.num_patches, width,
                initializer=make_initializer(config.init_type, config.init_gain), name=name))
    return selectors
