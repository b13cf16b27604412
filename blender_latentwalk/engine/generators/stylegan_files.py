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
import pickle
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

    return torch.load(io.BytesIO(data), weights_only=True)


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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise LatentWalkError(f"'{path}' is not a readable StyleGAN pickle ({error}): download it again.") from None
    if not isinstance(loaded, dict):
        raise LatentWalkError(f"'{path}' holds a {type(loaded).__name__}, not NVIDIA's dict of networks.")
    records = {key: loaded[key] for key in NETWORK_KEYS if isinstance(loaded.get(key), PersistentRecord)}
    if not records:
        raise LatentWalkError(f"'{path}' has none of {', '.join(NETWORK_KEYS)}: it is not a StyleGAN network pickle.")
    return records


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
    except pickle.UnpicklingError as error:  # weights_only refused something: it names the global
        raise UnsafePickleError(f"'{path}' holds more than weights ({str(error).splitlines()[0]}): it was not "
                                "loaded (nothing in it ran).") from None
    except (RuntimeError, ValueError, EOFError) as error:
        raise LatentWalkError(f"'{path}' is not a readable PyTorch checkpoint ({error}): download it again.") from None
    generator = checkpoint.get("g_ema") if isinstance(checkpoint, dict) else None
    if not isinstance(generator, dict) or not generator:
        raise LatentWalkError(f"'{path}' has no 'g_ema' weights: it is not a rosinality-format StyleGAN2 checkpoint.")
    found = dict(generator)
    if isinstance(checkpoint.get("latent_avg"), torch.Tensor):
        found["latent_avg"] = checkpoint["latent_avg"]
    return found
