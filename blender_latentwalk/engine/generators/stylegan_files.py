"""Reading the StyleGAN model files artists bring as data, never as code: NVIDIA's StyleGAN2-ADA /
StyleGAN3 ``.pkl`` files (`load_records`) and rosinality-format ``.pt`` checkpoints (`load_rosinality`).

NVIDIA pickles each network with ``torch_utils.persistence``: the pickle calls
``_reconstruct_persistent_obj(meta)``, where ``meta`` holds the Python source of the network's
module, the class name and the object's state, and the usual loader ``exec``s that source. Here a
restricted unpickler maps that one global to `PersistentRecord` (the class name, the init
arguments, the parameters and buffers, the child records), and allows only tensors, storages and
plain containers besides; the embedded source is kept as text and never run or imported. Any other
global in the file is refused with `UnsafePickleError`, before anything it names is called.

The records feed our own PyTorch networks, which load the parameters with a strict key check.
"""

import io
import os
import pickle
import re
from dataclasses import dataclass, field

from ..errors import LatentWalkError

NETWORK_KEYS = ("G_ema", "G", "D")  # what NVIDIA's training pickles hold, G_ema first: the one to render
# The persistent classes of NVIDIA's StyleGAN2-ADA (training/networks.py, augment.py) and StyleGAN3
# (training/networks_stylegan3.py) pickles, by name: a record of any other class is refused.
KNOWN_CLASS_NAMES = frozenset({
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer", "SynthesisInput",
    "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer",
    "Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStdLayer", "AugmentPipe",
})


class UnsafePickleError(LatentWalkError):
    """The file asks for something a StyleGAN pickle never needs (code to run, a class we do not read)."""


@dataclass
class PersistentRecord:
    """One network (or layer) as NVIDIA's pickle describes it, read as data.

    class_name : e.g. "Generator", "MappingNetwork", "SynthesisLayer".
    init_kwargs : the keyword arguments it was built with (resolution, channels, ...).
    parameters, buffers : {name: torch.Tensor} of this record alone (not its children).
    children : {name: PersistentRecord | torch.nn.Module state} of its sub-modules.
    source_chars : the length of the embedded source, which is never run.
    """

    class_name: str
    init_kwargs: dict
    parameters: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    children: dict = field(default_factory=dict)
    source_chars: int = 0

    def state_dict(self, prefix=""):
        """Every parameter and buffer below this record, named as ``torch.nn.Module.state_dict`` names
        them ("mapping.fc0.weight"): what our networks load with a strict key check."""
        found = {prefix + name: tensor for name, tensor in {**self.parameters, **self.buffers}.items()
                 if tensor is not None}
        for name, child in self.children.items():
            if isinstance(child, PersistentRecord):
                found.update(child.state_dict(f"{prefix}{name}."))
        return found


def _reconstruct_persistent_obj(meta):
    """What ``torch_utils.persistence._reconstruct_persistent_obj`` becomes: a record, its source unread."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise UnsafePickleError("a persistent object in the file is not a class record: it is not a StyleGAN "
                                "network pickle.")
    if meta["class_name"] not in KNOWN_CLASS_NAMES:
        raise UnsafePickleError(f"the file holds a network of class '{meta['class_name']}', which is not one of "
                                "StyleGAN2-ADA's or StyleGAN3's: it was not loaded (nothing in it ran).")
    state = meta.get("state") or {}
    return PersistentRecord(
        class_name=meta["class_name"], init_kwargs=dict(state.get("_init_kwargs") or {}),
        parameters=dict(state.get("_parameters") or {}), buffers=dict(state.get("_buffers") or {}),
        children=dict(state.get("_modules") or {}), source_chars=len(meta.get("module_src") or ""))


class _EasyDict(dict):
    """``dnnlib.util.EasyDict`` (a dict with attribute access) as a plain dict."""


def _load_storage_from_bytes(data):
    """``torch.storage._load_from_bytes``: a storage saved by torch.save, read with weights_only."""
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # saved on a GPU: read on any


def _allowed_globals():
    """(module, name) -> what the unpickler gives for it: every global a StyleGAN pickle uses."""
    import collections

    import torch
    import torch._utils

    allowed = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch", "Size"): torch.Size,
        # Protocol 3 pickles (Python 3.7, which StyleGAN2-ADA-PyTorch asks for) name these for a module's
        # ``_non_persistent_buffers_set``: constructors of plain data.
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
    }
    for name in ("FloatStorage", "HalfStorage", "DoubleStorage", "LongStorage", "IntStorage", "BoolStorage",
                 "ByteStorage"):
        allowed[("torch", name)] = getattr(torch, name)
    # The layers keep numpy values as attributes (weight_gain = 1 / np.sqrt(n): a numpy.float64), which
    # pickle rebuilds from a dtype and raw bytes; numpy 1 and 2 name the module differently.
    import numpy

    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:
        from numpy.core import multiarray

    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "scalar")] = multiarray.scalar
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
    allowed[("numpy", "dtype")] = numpy.dtype
    allowed[("numpy", "ndarray")] = numpy.ndarray
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, path):
        super().__init__(stream)
        self._allowed, self._path = _allowed_globals(), path

    def find_class(self, module, name):
        found = self._allowed.get((module, name))
        if found is None and module.startswith("dnnlib.tflib"):
            raise UnsafePickleError(
                f"'{self._path}' is a TensorFlow StyleGAN pickle (it asks for {module}.{name}): it was not loaded "
                "(nothing in it ran). Use the PyTorch version of the model (NVIDIA's legacy.py converts one).")
        if found is None:
            raise UnsafePickleError(
                f"'{self._path}' asks for {module}.{name}, which a StyleGAN network pickle never needs: it was "
                "not loaded (nothing in it ran). Use a StyleGAN2-ADA or StyleGAN3 .pkl from NVIDIA's training "
                "code, or a rosinality .pt checkpoint.")
        return found

    def persistent_load(self, pid):
        raise UnsafePickleError(f"'{self._path}' uses pickle persistent ids ({type(pid).__name__}): it is a "
                                "torch.save file, not an NVIDIA network pickle; load it as a .pt checkpoint.")


def load_records(path):
    """{key: PersistentRecord} of the networks in NVIDIA's pickle ``path`` (G_ema, G, D: those present).

    Raises `UnsafePickleError` (nothing in the file run) for anything but tensors, storages, plain
    containers and persistent class records; LatentWalkError when it cannot be read or holds no network.
    """
    try:
        with open(path, "rb") as stream:
            loaded = _RestrictedUnpickler(stream, path).load()
    except UnsafePickleError:
        raise
    except OSError as error:
        raise LatentWalkError(f"cannot read the StyleGAN pickle '{path}' ({error.strerror}).") from None
    except LatentWalkError:
        raise
    except Exception as error:  # noqa: BLE001 (pickle, numpy and torch each raise their own kinds on a damaged file)
        raise LatentWalkError(f"'{path}' is damaged or not a StyleGAN pickle ({type(error).__name__}: "
                              f"{_first_line(error)}): download it again.") from None
    if not isinstance(loaded, dict):
        raise LatentWalkError(f"'{path}' holds a {type(loaded).__name__}, not NVIDIA's dict of networks.")
    records = {key: loaded[key] for key in NETWORK_KEYS if isinstance(loaded.get(key), PersistentRecord)}
    if not records:
        raise LatentWalkError(f"'{path}' has none of {', '.join(NETWORK_KEYS)}: it is not a StyleGAN network pickle.")
    return records


def _first_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0][:200] if lines else "no details"


def load_rosinality(path):
    """{name: torch.Tensor} of ``g_ema`` in a rosinality-format checkpoint ``path`` (stylegan2-pytorch, as
    maua uses), and its ``latent_avg`` (the mapped average, for truncation) when it has one, under
    "latent_avg". Read with ``torch.load(weights_only=True)``: tensors and containers only (the training
    arguments, an ``argparse.Namespace``, are allowed as the plain attribute holder they are)."""
    import argparse

    import torch

    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise LatentWalkError(f"cannot read the StyleGAN checkpoint '{path}' ({error.strerror or error}).") from None
    except pickle.UnpicklingError as error:  # weights_only refused something, or it is no torch.save file
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        if refused is None:
            raise LatentWalkError(f"'{path}' is not a PyTorch checkpoint ({_first_line(error)}): download it "
                                  "again.") from None
        if refused.group(1).startswith("torch_utils.persistence"):
            raise LatentWalkError(f"'{path}' is an NVIDIA network pickle, not a rosinality checkpoint: rename it "
                                  "to .pkl.") from None
        raise UnsafePickleError(f"'{path}' asks for {refused.group(1)}, which a StyleGAN checkpoint never needs: "
                                "it was not loaded (nothing in it ran).") from None
    except Exception as error:  # noqa: BLE001 (zip, pickle and torch each raise their own kinds on a damaged file)
        raise LatentWalkError(f"'{path}' is damaged or not a PyTorch checkpoint ({type(error).__name__}: "
                              f"{_first_line(error)}): download it again.") from None
    generator = checkpoint.get("g_ema") if isinstance(checkpoint, dict) else None
    if not isinstance(generator, dict) or not generator:
        raise LatentWalkError(f"'{path}' has no 'g_ema' weights: it is not a rosinality-format StyleGAN2 checkpoint.")
    found = dict(generator)
    if isinstance(checkpoint.get("latent_avg"), torch.Tensor):
        found["latent_avg"] = checkpoint["latent_avg"]
    return found


# Writing: the tiny stand-ins (engine `make-tiny-models`) in NVIDIA's exact pickle layout.

# What NVIDIA's pickles embed as each network's module source; ours never reads it, so a stand-in says so.
STAND_IN_SOURCE = ("# Latent Walk stand-in: NVIDIA's pickles embed their network's Python source here. Latent Walk "
                   "never runs or reads it.\n")


class _NvidiaName:
    """A reference to ``module.name`` (NVIDIA's), written as such by `_Writer` though no such module exists here."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle asks a reduce function to be callable; this one is only ever written
        raise AssertionError(f"{self.module}.{self.name} is written, never called")


class _Writer(pickle._Pickler):  # noqa: SLF001 (the Python pickler: its dispatch table can take one more type)
    """pickle's own writer, plus `_NvidiaName` written as a GLOBAL reference (the C pickler would import the
    module to check the name, and NVIDIA's modules are exactly what must not be needed)."""

    dispatch = dict(pickle._Pickler.dispatch)  # noqa: SLF001

    def _save_nvidia_name(self, reference):
        self.write(pickle.GLOBAL + f"{reference.module}\n{reference.name}\n".encode("ascii"))
        self.memoize(reference)

    dispatch[_NvidiaName] = _save_nvidia_name


class _Record:
    """A persistent record as NVIDIA's ``torch_utils.persistence`` pickles one: ``_reconstruct_persistent_obj(meta)``."""

    _RECONSTRUCT = _NvidiaName("torch_utils.persistence", "_reconstruct_persistent_obj")

    def __init__(self, class_name, state):
        self.meta = {"type": "class", "version": 6, "module_src": STAND_IN_SOURCE, "class_name": class_name,
                     "state": state}

    def __reduce__(self):
        return self._RECONSTRUCT, (self.meta,)


def _easy_dict(value):
    """dicts as ``dnnlib.util.EasyDict``, as NVIDIA's training code passes them."""
    if isinstance(value, dict):
        return _WrittenEasyDict({key: _easy_dict(item) for key, item in value.items()})
    return value


class _WrittenEasyDict(dict):
    """Written as ``dnnlib.util.EasyDict`` (rebuilt as the dict it is)."""

    def __reduce__(self):
        return _EASY_DICT, (), None, None, iter(self.items())


_EASY_DICT = _NvidiaName("dnnlib.util", "EasyDict")


def _plain(value):
    """Whether ``value`` is data a module's state holds as NVIDIA's persistence pickles it (numbers, text,
    numpy values, containers of them): torch's hook dicts, the non-persistent buffer set, layer constants."""
    import numpy

    if value is None or isinstance(value, (bool, int, float, str, numpy.generic, numpy.ndarray)):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(_plain(key) and _plain(item) for key, item in value.items())
    return False


def _record_of(module):
    """The `_Record` of one of our network modules (``nvidia_class_name``, ``init_args``, ``init_kwargs``) and
    of its children, holding what NVIDIA's persistence pickles: the module's whole state (``vars``: parameters,
    buffers, torch's own bookkeeping, the layer's constants), its children as records, the init arguments."""
    import collections

    state = {key: value for key, value in vars(module).items()
             if key not in ("init_args", "init_kwargs", "_modules", "_parameters", "_buffers") and _plain(value)}
    state.update(training=False, _parameters=collections.OrderedDict(module._parameters),
                 _buffers=collections.OrderedDict(module._buffers),
                 _modules=collections.OrderedDict((name, _record_of(child)) for name, child in module._modules.items()),
                 _init_args=tuple(getattr(module, "init_args", ())),
                 # NVIDIA keeps the keyword arguments as the plain dict they came in (nested ones as train.py
                 # made them: EasyDict)
                 _init_kwargs={key: _easy_dict(value) for key, value in dict(module.init_kwargs).items()})
    return _Record(module.nvidia_class_name, state)


def write_pickle(path, generator, resolution, protocol=4):
    """Write ``generator`` (our StyleGAN2 / StyleGAN3 Generator) in the layout NVIDIA's training code writes a
    network pickle: {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}, each network a persistent
    record (here G and G_ema hold the same weights, and D is an empty Discriminator record: nothing reads it).
    protocol : pickle's protocol: 4 as Python 3.8+ writes by default, 3 as Python 3.7 (StyleGAN2-ADA's) did.

    No NVIDIA module is imported or needed: the two names the file refers to are written as references.
    """
    import copy

    generator = generator.cpu().eval()
    data = {"G": _record_of(generator), "D": _Record("Discriminator", {"training": False, "_parameters": {},
                                                                       "_buffers": {}, "_modules": {},
                                                                       "_init_args": (), "_init_kwargs": {}}),
            "G_ema": _record_of(copy.deepcopy(generator)), "augment_pipe": None,
            "training_set_kwargs": {"resolution": resolution, "use_labels": bool(generator.c_dim)}}
    from .. import atomic

    atomic.write_via(path, lambda stream: _Writer(stream, protocol=protocol).dump(data))
    return path


PEEK_BYTES = 64 * 2**20  # the generator's records come first; SynthesisInput's name is in its first megabytes


def peek_kind(path):
    """"StyleGAN3", "StyleGAN2" or None (unreadable) for the model file ``path``, without unpickling it (no
    torch: Blender's own Python asks, to show the settings a model has). A StyleGAN3 pickle names the
    class SynthesisInput in its generator's records; a rosinality .pt is StyleGAN2."""
    if not path.lower().endswith(".pkl"):
        return "StyleGAN2" if os.path.isfile(path) else None
    try:
        with open(path, "rb") as stream:
            head = stream.read(PEEK_BYTES)
    except OSError:
        return None
    return "StyleGAN3" if b"SynthesisInput" in head else "StyleGAN2"
