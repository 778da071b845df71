"""Model conversion: generators trained with the public PyTorch CUT / FastCUT / QS-Attn code
become tfattncut run directories (what `launch.import_torch` runs).

`torch.save(net.state_dict(), ...)` files are read without torch: a zip (torch >= 1.6) or
legacy pickle stream whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)` calls on storages kept as raw bytes. A restricted unpickler allows only
those few globals, so a .pth cannot run code. Reference names map to tfattncut's layer list
one to one: `model.I.weight` is entry I of `ResnetGenerator.layer_list` and
`model.I.conv_block.J.weight` entry J of residual block I's body
(docs/design/networks.md#reference-weight-layout); the fixed blur filters (`model.I.filt`)
are buffers with nothing to import.
"""
import collections
import glob
import io
import os
import pickle
import struct
import zipfile

import numpy as np
from absl import flags, logging

from tfattncut import config as config_lib
from tfattncut.checkpoints import make_checkpoint
from tfattncut.methods import method_class
from tfattncut.models.generator import GENERATOR_BLOCKS, ResnetBlock, ResnetGenerator

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage named by the pickle, filled in once its bytes are read."""

    def __init__(self, storage_type, key):
        self.type, self.key = storage_type, key
        self.array = None


class _Tensor:
    """A tensor view (offset, size, stride in elements) on a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), stride

    def materialize(self, path):
        data = self.storage.array
        if 0 in self.size:
            return np.zeros(self.size, data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= data.size:
            raise ValueError(f"{path}: a tensor reaches past its storage; the file is damaged")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], self.size, [s * data.itemsize for s in self.stride])
        return np.array(view)


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    """Allows tensors, storages and ordered dicts; nothing else can be constructed."""

    _GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
                ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
                ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
                ("torch", "Size"): tuple}

    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[module, name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise ValueError(
            f"--netG={self.path}: refusing to load {module}.{name}; only state dicts of tensors "
            "are read (save the generator with torch.save(net.state_dict(), PATH))")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise ValueError(f"--netG={self.path}: unknown persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type, key)
        return self.storages[key]


def _as_array(raw, storage_type, little_endian):
    if storage_type.dtype == "bfloat16":  # the top half of a float32
        bits = np.frombuffer(raw, "<u2" if little_endian else ">u2").astype(np.uint32)
        return (bits << 16).view(np.float32)
    dtype = np.dtype(storage_type.dtype).newbyteorder("<" if little_endian else ">")
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a torch zip file holds one data.pkl; found {pickles}")
        prefix = pickles[0][:-len("data.pkl")]
        little = True
        if prefix + "byteorder" in names:
            little = archive.read(prefix + "byteorder").strip() == b"little"
        unpickler = _Unpickler(io.BytesIO(archive.read(pickles[0])), path)
        result = unpickler.load()
        for key, storage in unpickler.storages.items():
            storage.array = _as_array(archive.read(f"{prefix}data/{key}"), storage.type, little)
    return result


def _load_legacy(path):
    with open(path, "rb") as f:
        def header():
            return _Unpickler(f, path).load()

        if header() != _LEGACY_MAGIC:
            raise ValueError(f"{path} is neither a torch zip file nor a legacy torch pickle")
        header()  # protocol version
        little = header().get("little_endian", True)
        unpickler = _Unpickler(f, path)
        result = unpickler.load()
        for key in header():
            storage = unpickler.storages[str(key)]
            count, = struct.unpack("<q" if little else ">q", f.read(8))
            itemsize = 2 if storage.type.dtype == "bfloat16" else \
                np.dtype(storage.type.dtype).itemsize
            storage.array = _as_array(f.read(count * itemsize), storage.type, little)
    return result


def load_state_dict(path):
    """{name: ndarray} of a `torch.save(state_dict)` file; a DataParallel `module.` prefix is
    dropped."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--netG={path} does not exist")
    try:
        loaded = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, zipfile.BadZipFile) as error:
        raise ValueError(f"--netG={path} is not a file that torch.save(net.state_dict(), PATH) "
                         f"writes ({type(error).__name__}: {error})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    state = {}
    for name, value in loaded.items():
        if not isinstance(value, _Tensor):
            raise ValueError(f"{path}: entry {name!r} is not a tensor; expected the "
                             "generator's state_dict()")
        state[name.removeprefix("module.")] = value.materialize(path)
    return state


def generator_options(state):
    """The Config fields that a reference state dict fixes, read from its layer names and
    weight shapes: netG, ngf, no_antialias and no_antialias_up (transposed-conv upsampling
    leaves no blur filter buffer after the residual blocks; its weights (in, out, kh, kw)
    take the same transposition to Keras' (kh, kw, out, in) as conv weights)."""
    if "model.1.weight" not in state:
        raise ValueError("not a reference ResnetGenerator state dict: it has no "
                         f"model.1.weight (first names: {sorted(state)[:4]})")
    blocks = sorted({int(name.split(".")[1]) for name in state if ".conv_block." in name})
    if len(blocks) not in GENERATOR_BLOCKS.values() or blocks != list(
            range(blocks[0], blocks[-1] + 1)):
        raise ValueError(f"expected {sorted(GENERATOR_BLOCKS.values())} residual blocks numbered "
                         f"consecutively; the state dict has blocks {blocks}")
    return {
        "netG": next(name for name, count in GENERATOR_BLOCKS.items() if count == len(blocks)),
        "ngf": int(state["model.1.weight"].shape[0]),
        # Anti-aliased downsampling adds a blur entry per stage: blocks start at 12, not 10.
        "no_antialias": blocks[0] == 10,
        "no_antialias_up": f"model.{blocks[-1] + 1}.filt" not in state,
    }


def _weighted_layers(generator):
    """(reference name prefix, Keras layer) of every layer with weights, in order."""
    for index, layer in enumerate(generator.layer_list):
        if isinstance(layer, ResnetBlock):
            for j, sub in enumerate(layer.body):
                if sub.weights:
                    yield f"model.{index}.conv_block.{j}", sub
        elif layer.weights:
            yield f"model.{index}", layer


def assign_generator(generator, state):
    """Copies a reference state dict into a built tfattncut ResnetGenerator.

    Conv weights (O, I, kh, kw) become Keras' (kh, kw, I, O); every name and shape is
    checked, and leftovers other than blur filters are an error.
    """
    used = set()
    for prefix, layer in _weighted_layers(generator):
        for suffix, variable, to_keras in (("weight", layer.kernel, (2, 3, 1, 0)),
                                           ("bias", layer.bias, None)):
            name = f"{prefix}.{suffix}"
            if name not in state:
                raise ValueError(f"the state dict has no {name} (needed for {layer.name}, "
                                 f"shape {tuple(variable.shape)})")
            value = state[name] if to_keras is None else state[name].transpose(to_keras)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{name} has shape {state[name].shape}, which does not fit "
                                 f"{layer.name} ({tuple(variable.shape)} in Keras layout)")
            variable.assign(value.astype(np.float32))
            used.add(name)
    left = sorted(name for name in set(state) - used if not name.endswith(".filt"))
    if left:
        raise ValueError(f"the state dict has entries tfattncut's generator has no place "
                         f"for: {left[:6]}{' ...' if len(left) > 6 else ''} (the reference "
                         "generator uses instance norm without affine weights and no dropout)")


def preset_config(preset):
    """The Config of a preset name (configs/NAME.cfg, from the repository root) or a path."""
    path = preset if preset.endswith(".cfg") else os.path.join("configs", f"{preset}.cfg")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--preset={preset}: {path} not found; run from the "
                                "repository root or pass the path of a .cfg flagfile")
    flag_values = flags.FlagValues()
    config_lib.define_flags(flag_values)
    try:
        flag_values(["import_torch", f"--flagfile={path}"])
        return config_lib.from_flags(flag_values)
    except flags.Error as error:
        raise ValueError(f"--preset={preset}: {path} does not parse as launch.train's flags "
                         f"({error})") from None
    except ValueError as error:
        raise ValueError(f"--preset={preset}: {path}: {error}") from None


def importable_presets(known=None):
    """The preset names in configs/ whose translator is the ResNet generator alone, the one
    network a reference state dict fills. known: {model: whether it is}, already found out;
    building a translator takes seconds."""
    fills = dict(known or {})  # one build per model
    names = []
    for path in sorted(glob.glob(os.path.join("configs", "*.cfg"))):
        try:
            config = preset_config(path)
        except ValueError:
            continue  # not a training preset (configs/study.cfg configures launch.study)
        if config.model not in fills:
            translator, _ = method_class(config.model).build_translator(config, "AtoB")
            fills[config.model] = isinstance(translator, ResnetGenerator)
        if fills[config.model]:
            names.append(os.path.basename(path)[:-len(".cfg")])
    return names


def import_generator(pth_path, preset, out):
    """Writes a run directory OUT (config.json + checkpoints/) holding the imported
    generator, which load_translator and launch.export accept; returns OUT."""
    state = load_state_dict(pth_path)
    options = generator_options(state)
    base = preset_config(preset)
    changed = {k: (getattr(base, k), v) for k, v in options.items() if getattr(base, k) != v}
    if changed:
        logging.info("The state dict overrides the preset: %s", changed)
    out = os.path.normpath(out)
    # Another run's config.json or checkpoints would be overwritten, or mixed with ours.
    if os.path.isdir(out) and os.listdir(out):
        raise FileExistsError(f"--out={out} already holds {sorted(os.listdir(out))[0]}; "
                              "choose a new or empty folder")
    config = base.replace(name=os.path.basename(out), checkpoints_dir=os.path.dirname(out),
                          **options)
    translator, trackables = method_class(config.model).build_translator(config, "AtoB")
    if not isinstance(translator, ResnetGenerator):
        presets = importable_presets({config.model: False})
        raise ValueError(f"--preset={preset}: its method, {config.model}, translates with "
                         f"{type(translator).__name__}, whose networks beyond the ResNet "
                         "generator a reference state dict cannot fill; the presets whose "
                         "translator is that generator alone: "
                         f"{', '.join(presets) or 'none in ./configs'}")
    checkpoint_dir = os.path.join(out, "checkpoints")
    try:
        assign_generator(translator, state)
    except ValueError as error:
        raise ValueError(f"--netG={pth_path}: {error}") from None
    os.makedirs(checkpoint_dir, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(config.to_json())
    make_checkpoint(**trackables).save(os.path.join(checkpoint_dir, "ckpt"))
    return out
