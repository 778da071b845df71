"""Every option of tfattncut as one frozen dataclass, `Config`, whose fields are also the absl
flags of the launch scripts (names as in the reference code where one exists).

The options every run has are declared here (`SharedOptions`). A method's own options are a
frozen dataclass next to its code (`Method.options`, e.g. `CycleGANOptions` in
methods/cyclegan.py), a selector's next to its code (`Selector.options`). `Config` gathers
them all into one flat dataclass: one flag namespace, one flat config.json (so the
config.json of runs from before the split load as they are), and `config.lambda_A` wherever
it was declared. Adding a method's option touches only its own file.

Presets are flagfiles in configs/; the resolved configuration is written into each run
directory (config.json), which is how `translate` and `describe` rebuild the networks.
"""
import collections
import collections.abc
import dataclasses
import functools
import importlib
import json
import os
import typing

from absl import flags

from tfattncut import json_files
from tfattncut.errors import InvalidValue
from tfattncut.options import (AT_LEAST_ONE, BELOW_ONE, DIRECTIONS, GAN_MODES,
                               GENERATOR_BLOCKS, INIT_GAIN, INIT_TYPE, INIT_TYPES, LR_POLICIES,
                               NETF_NC, NON_NEGATIVE, POSITIVE, PRECISION_POLICIES,
                               PREPROCESS_MODES, SEED, STRATEGIES, option, register_bounds)


class RegistryKeys(collections.abc.Sequence):
    """The names in a registry (`module.attribute`, a dict name -> class) as a list of choices.

    A choice list lives once, in its registry, which the methods (tfattncut.methods.METHODS)
    and selectors (tfattncut.selection.SELECTORS) fill with their classes; config reads it on
    first use (when define_flags makes the enum flag or `Config` is gathered), so importing
    this module does not import TensorFlow. The dependency runs one way: config reads the
    registries, and the methods and selectors declare their options with
    tfattncut.options, never importing config, so there is no cycle to hide. (The data layer
    does not import config either: the trainer validates a config before it reads data.)
    """

    def __init__(self, module, attribute):
        self.module, self.attribute = module, attribute

    def registry(self):
        """The registry itself, {name: class}."""
        return getattr(importlib.import_module(self.module), self.attribute)

    def _names(self):
        return list(self.registry())

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self):
        return len(self._names())


# The registries whose names are --model's and --selector's choices, and whose classes
# declare their own options (`options`).
METHODS = RegistryKeys("tfattncut.methods", "METHODS")
SELECTORS = RegistryKeys("tfattncut.selection", "SELECTORS")
# --preprocess modes that resize to load_size and then crop crop_size² out of that.
_RESIZE_THEN_CROP = ("resize_and_crop", "scale_width_and_crop")

_next_area = None  # set by _area while SharedOptions' body runs


def _area(name):
    """Starts a group of SharedOptions fields (data, networks, method, ...) while the class
    body runs: `--helpfull` lists their flags under `name`."""
    global _next_area
    _next_area = name


def _field(default, help_text, choices=None, bounds=None):
    return option(default, help_text, choices, bounds, _next_area)


@dataclasses.dataclass(frozen=True)
class SharedOptions:
    """The options every run has, whatever its method; `Config` adds the methods' and
    selectors' own."""
    _area("method")  # its objective follows the data and the networks
    model: str = _field("cut", "Training method.", METHODS)
    _area("data")  # docs/design/training.md#unaligned-folder-data-set
    dataroot: str = _field("data/synth_street", "Folder with trainA, trainB, testA, testB.")
    make_synthetic: bool = _field(
        False, "Render the bundled synthetic street scenes into dataroot if it has none.")
    direction: str = _field("AtoB", "Translation direction.", DIRECTIONS)
    max_dataset_size: int = _field(
        0, "Cap on the images per domain (0: no cap).", bounds=NON_NEGATIVE)
    serial_batches: bool = _field(False, "Iterate A and B in sorted order instead of "
                                  "shuffling A and drawing B at random.")
    preprocess: str = _field("resize_and_crop", "Training-time resizing; none keeps each "
                             "image's size, scale_width its aspect ratio, so images of several "
                             "sizes "
                             "need batch size 1 and a method that keeps A and B apart (no "
                             "--nce_idt or identity term).", PREPROCESS_MODES)
    load_size: int = _field(286, "Resize target before cropping.", bounds=AT_LEAST_ONE)
    crop_size: int = _field(256, "Training crop size.", bounds=AT_LEAST_ONE)
    no_flip: bool = _field(False, "Disable random horizontal flips.")
    batch_size: int = _field(1, "Global batch size (split over replicas).", bounds=AT_LEAST_ONE)
    _area("networks")  # docs/design/networks.md
    netG: str = _field("resnet_9blocks", "Generator.", list(GENERATOR_BLOCKS))
    ngf: int = _field(64, "Generator width.", bounds=AT_LEAST_ONE)
    ndf: int = _field(64, "Discriminator width.", bounds=AT_LEAST_ONE)
    n_layers_D: int = _field(3, "Discriminator depth.", bounds=NON_NEGATIVE)
    init_type: str = _field(INIT_TYPE, "Weight initialisation.", INIT_TYPES)
    init_gain: float = _field(INIT_GAIN, "Initialisation gain.", bounds=NON_NEGATIVE)
    no_antialias: bool = _field(False, "Strided convs instead of blur downsampling.")
    no_antialias_up: bool = _field(False, "Transposed convs instead of blur upsampling.")
    _area("method")  # the objective: docs/design/losses.md
    gan_mode: str = _field("lsgan", "GAN loss.", GAN_MODES)
    lambda_GAN: float = _field(1.0, "Weight of the GAN loss.", bounds=NON_NEGATIVE)
    lambda_NCE: float = _field(1.0, "Weight of the PatchNCE loss.", bounds=NON_NEGATIVE)
    nce_layers: tuple[int, ...] = _field((0, 4, 8, 12, 16), "Generator layers used by PatchNCE.")
    nce_T: float = _field(0.07, "PatchNCE temperature.", bounds=POSITIVE)
    num_patches: int = _field(256, "Patches per layer and image.", bounds=AT_LEAST_ONE)
    netF_nc: int = _field(NETF_NC, "Projection head width.", bounds=AT_LEAST_ONE)
    nce_includes_all_negatives_from_minibatch: bool = _field(
        False, "Take negatives from the whole batch instead of the same image.")
    _area("selection")  # docs/design/selection.md
    selector: str = _field(
        "random", "Patch selector (docs/design/selection.md).",
        SELECTORS)
    qs_layers: tuple[int, ...] = _field(
        (), "NCE layers where a non-random selector acts (empty: the last two nce_layers).")
    # the run, optimisation (docs/design/training.md#optimisation), runtime
    _area("training")
    name: str = _field("experiment", "Run name: outputs go to checkpoints_dir/name.")
    checkpoints_dir: str = _field("runs", "Root folder of run directories.")
    seed: int = _field(0, "Seed of every random draw (data order, crops, patches, init).",
                       bounds=SEED)
    lr: float = _field(2e-4, "Initial Adam learning rate of G, D and F.", bounds=POSITIVE)
    beta1: float = _field(0.5, "Adam β1.", bounds=BELOW_ONE)
    beta2: float = _field(0.999, "Adam β2.", bounds=BELOW_ONE)
    lr_policy: str = _field("linear", "Learning-rate policy per epoch.", LR_POLICIES)
    n_epochs: int = _field(200, "Epochs at the initial learning rate.", bounds=NON_NEGATIVE)
    n_epochs_decay: int = _field(200, "Epochs of linear decay after n_epochs.", bounds=NON_NEGATIVE)
    lr_decay_iters: int = _field(
        50, "Epochs between ×0.1 steps for lr_policy=step.", bounds=AT_LEAST_ONE)
    jit_compile: str = _field(
        "auto", "XLA-compile each replica's forward pass, losses and gradients: auto compiles "
        "where it pays (GPU/TPU, any number of replicas); true forces it, false disables it.",
        ["auto", "true", "false"])
    strategy: str = _field(
        "default", "tf.distribute strategy: default (none), one_device, mirrored (every local "
        "GPU, else every logical CPU), multi_worker (MultiWorkerMirroredStrategy over the "
        "cluster in the TF_CONFIG environment variable; --batch_size is the global batch), tpu "
        "(the TPU named by TPU_NAME, else this TPU VM's).", STRATEGIES)
    max_steps: int = _field(
        0, "Stop after this many steps in total (0: run every epoch).", bounds=NON_NEGATIVE)
    checkpoint_every: int = _field(
        500, "Save a checkpoint every N steps (and at the end).", bounds=AT_LEAST_ONE)
    summary_every: int = _field(50, "Write loss and lr scalars every N steps.", bounds=AT_LEAST_ONE)
    log_every: int = _field(
        50, "When stdout is not a terminal, print one progress line (step/total, steps/s, ETA "
        "of the run, losses) every N steps; a terminal gets a progress bar.",
        bounds=AT_LEAST_ONE)
    image_every: int = _field(
        500, "Write image grids and weight histograms every N steps.", bounds=AT_LEAST_ONE)
    profile_steps: tuple[int, ...] = _field(
        (), "A,B: run the TensorBoard profiler from step A to step B (1-based, inclusive) into "
        "RUN/logs; `launch.benchmark --profile_top=RUN/logs` lists its top ops (empty: off).")
    keep_checkpoints: int = _field(3, "How many recent checkpoints to keep.", bounds=AT_LEAST_ONE)
    resume: bool = _field(False, "Continue from the newest checkpoint of the run directory.")
    mixed_precision: str = _field(
        "none", "Keras dtype policy of the networks: compute in float16 (with dynamic loss "
        "scaling) or bfloat16, variables float32; losses, NCE logits and QS-Attn attention "
        "stay float32.", list(PRECISION_POLICIES))
    tf32: bool = _field(
        False, "Allow TF32 float32 matmuls/convolutions on Ampere or newer GPUs (TensorFlow's "
        "own default is on). Off, so float32 runs compute as the reference did; for speed "
        "use --mixed_precision.")
    max_nonfinite_steps: int = _field(
        10, "Stop with an error after this many consecutive steps skipped for a non-finite "
        "loss or gradient (0: never stop; float16 loss-scale overflows do not count).",
        bounds=NON_NEGATIVE)
    _area("evaluation")  # during training: docs/design/metrics.md#reports
    eval_every_epochs: int = _field(
        0, "Every N epochs, translate the test split, score it, log the metrics, and keep the "
        "best-FID checkpoint in RUN/best_fid/ (0: never).", bounds=NON_NEGATIVE)
    eval_metrics: tuple[str, ...] = _field(("fid", "kid"), "Metrics of --eval_every_epochs.")
    inception: str = _field(
        "", "Inception backbone for FID/KID/IS: keras:PATH or fid2015:PATH (local weights), "
        "segmenter:SAVEDMODEL (a segmenter's feature space), or random (smoke tests only; its "
        "numbers are not comparable).")


class _ConfigMethods:
    """What a `Config` does besides holding the options (a base of the gathered class)."""

    @property
    def run_dir(self):
        return os.path.join(self.checkpoints_dir, self.name)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def changed_fields(self, other):
        """{name: (self's value, other's value)} of the fields where the two differ."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}

    @classmethod
    def from_json_file(cls, path):
        """Reads a run's config.json, checked as flags are (`validate`): a field of another
        type, an unknown one or a value that cannot work is an error naming the file (an
        edited file would otherwise fail inside Keras, or as a flag nobody passed)."""
        values = json_files.read_object(
            path, "launch.train writes it, and it describes the run's networks")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidValue(f"{path}: unknown config fields {unknown}")
        for field in dataclasses.fields(cls):
            if field.name in values:
                values[field.name] = _json_value(path, field, values[field.name])
        config = cls(**values)
        try:
            validate(config)
        except InvalidValue as error:
            raise InvalidValue(f"{path}: {error}") from None
        return config


def _json_value(path, field, value):
    """A config.json value as `field`'s type (a JSON list as a tuple, an integer as a float);
    InvalidValue naming the file and field when it is of another type."""
    kind = typing.get_origin(field.type) or field.type
    items = typing.get_args(field.type)[:1]
    if kind is tuple and isinstance(value, list) and all(
            _is_json(v, items[0]) for v in value):
        return tuple(value)
    if kind is not tuple and _is_json(value, kind):
        return float(value) if kind is float else value
    wanted = f"a list of {items[0].__name__}" if kind is tuple else kind.__name__
    raise InvalidValue(f"{path}: field {field.name} must be {wanted}; got {value!r}")


def _is_json(value, kind):
    """Whether a JSON value is of the Python type `kind` (bool is not an int here; an int is
    a float)."""
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def _gathered_fields():
    """[(name, type, field)] of `Config`: SharedOptions' fields, then those of each method's
    and each selector's options in registry order. A field inherited by several of them is
    one flag, whose help starts with the names of all that use it; a name declared twice is
    a programming error."""
    gathered = {field.name: field for field in dataclasses.fields(SharedOptions)}
    users, areas = collections.defaultdict(list), {}
    for area, registry in (("method", METHODS), ("selection", SELECTORS)):
        for owner_name, owner in registry.registry().items():
            for field in dataclasses.fields(owner.options):
                if gathered.setdefault(field.name, field) is not field:
                    raise TypeError(
                        f"option {field.name} of {owner_name} ({owner.options.__name__}) is "
                        "declared twice: options of several methods or selectors belong in "
                        "one dataclass that their options inherit")
                users[field.name].append(owner_name)
                areas[field.name] = area
    fields = []
    for name, field in gathered.items():
        metadata = dict(field.metadata)
        if name in users:
            metadata.update(area=areas[name],
                            help=f"{', '.join(users[name])}: {metadata['help']}")
        fields.append((name, field.type,
                       dataclasses.field(default=field.default, metadata=metadata)))
    return fields


@functools.cache
def config_class():
    """`Config`, gathered once (see the module docstring)."""
    return dataclasses.make_dataclass(
        "Config", _gathered_fields(), bases=(_ConfigMethods,), frozen=True,
        namespace={"__module__": __name__,
                   "__doc__": "The run's options: SharedOptions and every method's and "
                              "selector's own, as one flat frozen dataclass."})


def __getattr__(name):
    """`Config` on first use (PEP 562): gathering it imports the registries, and with them
    TensorFlow, which importing this module alone does not."""
    if name == "Config":
        return config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def flag_group(field):
    """The --helpfull heading of a Config field's flag, e.g. 'tfattncut data flags'.

    absl groups flags by the module that defines them (sorted by name), so each area is
    defined under a module name of its own, all starting with 'tfattncut'."""
    return f"tfattncut {field.metadata['area']} flags"


def define_flags(flag_values=flags.FLAGS):
    """Defines one absl flag per Config field (idempotent), grouped by area for --helpfull."""
    for field in dataclasses.fields(config_class()):
        if field.name in flag_values:
            continue
        help_text, choices = field.metadata["help"], field.metadata["choices"]
        kind = typing.get_origin(field.type) or field.type
        where = dict(flag_values=flag_values, module_name=flag_group(field))
        if choices:
            flags.DEFINE_enum(field.name, field.default, choices, help_text, **where)
        elif kind is bool:
            flags.DEFINE_bool(field.name, field.default, help_text, **where)
        elif kind is int:
            flags.DEFINE_integer(field.name, field.default, help_text, **where)
        elif kind is float:
            flags.DEFINE_float(field.name, field.default, help_text, **where)
        elif kind is tuple:
            flags.DEFINE_list(field.name, [str(v) for v in field.default], help_text, **where)
        else:
            flags.DEFINE_string(field.name, field.default, help_text, **where)
        if field.metadata["bounds"]:
            register_bounds(field.name, field.metadata["bounds"], flag_values)


def from_flags(flag_values=flags.FLAGS):
    """The Config of the parsed flags; checks the values no flag type can check."""
    values = {}
    for field in dataclasses.fields(config_class()):
        value = flag_values[field.name].value
        if typing.get_args(field.type) == (int, ...):
            try:
                value = tuple(int(v) for v in value)
            except ValueError:
                raise flags.ValidationError(
                    f"--{field.name} must be comma-separated integers; got {','.join(value)}")
        elif typing.get_origin(field.type) is tuple:
            value = tuple(value)
        values[field.name] = value
    config = config_class()(**values)
    validate(config)
    check_discriminator_fits(config)
    return config


def validate(config):
    """Raises InvalidValue (a ValueError) naming the flag for values that cannot work: out of
    a field's choices or bounds (which parsing flags checks too), inconsistent with each
    other, or refused by the method's own `check_config`."""
    for field in dataclasses.fields(config):
        choices, value = field.metadata["choices"], getattr(config, field.name)
        if choices and value not in choices:
            raise InvalidValue(f"--{field.name} must be one of {', '.join(choices)}; "
                               f"got {value!r}")
        bounds = field.metadata["bounds"]
        if bounds and value not in bounds:
            raise InvalidValue(f"--{field.name} must be {bounds}; got {value}")
    parts = config.name.replace(os.sep, "/").split("/")
    if os.path.isabs(config.name) or any(part in ("", ".", "..") for part in parts):
        raise InvalidValue("--name must be a run folder under --checkpoints_dir (subfolders "
                           f"allowed: a/b), without empty, '.' or '..' parts; got "
                           f"{config.name!r}")
    if config.preprocess in _RESIZE_THEN_CROP and config.load_size < config.crop_size:
        raise InvalidValue(f"--load_size ({config.load_size}) must be >= --crop_size "
                           f"({config.crop_size}) for --preprocess={config.preprocess}")
    if config.n_epochs + config.n_epochs_decay < 1:
        raise InvalidValue("--n_epochs + --n_epochs_decay must be >= 1 (the epochs to train); "
                           f"got {config.n_epochs} + {config.n_epochs_decay}")
    if config.lr_policy == "cosine" and config.n_epochs < 1:
        raise InvalidValue("--lr_policy=cosine needs --n_epochs >= 1 (its period); got "
                           f"{config.n_epochs}")
    if config.crop_size % 4:
        raise InvalidValue(f"--crop_size must be a multiple of 4 (the generator downsamples "
                           f"twice); got {config.crop_size}")
    if not config.nce_layers or min(config.nce_layers) < 0:
        raise InvalidValue(
            f"--nce_layers must be non-negative layer numbers; got {config.nce_layers}")
    # The encoder returns its features in layer order, and selectors, heads and summaries
    # are matched to them by position: another order or a repeat pairs them with the wrong
    # layers without any error.
    if list(config.nce_layers) != sorted(set(config.nce_layers)):
        raise InvalidValue("--nce_layers must be strictly increasing layer numbers; got "
                           f"{','.join(map(str, config.nce_layers))}")
    if config.profile_steps and (len(config.profile_steps) != 2 or
                                 not 1 <= config.profile_steps[0] <= config.profile_steps[1]):
        raise InvalidValue(f"--profile_steps must be two steps A,B with 1 <= A <= B; got "
                           f"{','.join(str(s) for s in config.profile_steps)}")
    if config.eval_every_epochs and not config.inception and \
            {"fid", "kid", "is"} & set(config.eval_metrics):
        raise InvalidValue("--eval_every_epochs with FID/KID/IS needs --inception=keras:PATH, "
                           "fid2015:PATH (local weights) or random (smoke tests only)")
    METHODS.registry()[config.model].check_config(config)


def check_discriminator_fits(config):
    """Refuses a --crop_size the discriminator cannot score, before the data scan (Keras
    would fail inside the first step with a graph dump). Apart from `validate`: the data
    pipeline alone takes any crop.

    The discriminator halves the size (rounding down) in each of its max(1, n_layers_D)
    stages, then has two 4x4 convolutions with padding 1, each one pixel smaller: it needs
    crop_size // 2**stages >= 3 (tests/test_config.py runs it at the boundary, built on the
    64² probe as the methods build it)."""
    smallest_crop = 3 * 2**max(1, config.n_layers_D)
    if config.crop_size < smallest_crop:
        raise InvalidValue(f"--crop_size must be >= {smallest_crop} (3·2^max(1, n_layers_D)) "
                           f"for the discriminator of --n_layers_D={config.n_layers_D}; got "
                           f"{config.crop_size}")
