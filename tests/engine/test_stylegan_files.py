"""NVIDIA's StyleGAN pickles read as data (engine/generators/stylegan_files.py): the tiny files here are
written in NVIDIA's layout (``torch_utils.persistence._reconstruct_persistent_obj`` records holding the
module source, the class name and the state) with stand-in modules that exist only while writing."""

import contextlib
import os
import pickle
import sys
import types

import pytest

torch = pytest.importorskip("torch")

from blender_latentwalk.engine.errors import LatentWalkError  # noqa: E402
from blender_latentwalk.engine.generators import stylegan_files  # noqa: E402


@contextlib.contextmanager
def nvidia_modules():
    """``torch_utils.persistence`` and ``dnnlib.util`` as pickle must find them while writing; gone after."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called here: loading must not need it
        raise AssertionError("NVIDIA's reconstruct ran")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    names = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    sys.modules.update(names)
    try:
        yield persistence, util
    finally:
        for name in names:
            sys.modules.pop(name, None)


class Persistent:
    """A network as NVIDIA's persistent decorator pickles it."""

    def __init__(self, reconstruct, class_name, source, state):
        self.reconstruct, self.meta = reconstruct, dict(type="class", version=6, module_src=source,
                                                         class_name=class_name, state=state)

    def __reduce__(self):
        return self.reconstruct, (self.meta,)


def module_state(init_kwargs, parameters=None, buffers=None, modules=None):
    from collections import OrderedDict

    return {"training": False, "_parameters": OrderedDict(parameters or {}), "_buffers": OrderedDict(buffers or {}),
            "_modules": OrderedDict(modules or {}), "_init_args": (), "_init_kwargs": init_kwargs}


def write_tiny_pickle(path, marker):
    source = f"open({str(marker)!r}, 'w').write('the embedded source ran')\n"  # must never run
    torch.manual_seed(0)
    with nvidia_modules() as (persistence, util):
        reconstruct = persistence._reconstruct_persistent_obj
        fc = Persistent(reconstruct, "FullyConnectedLayer", source, module_state(
            util.EasyDict(in_features=4, out_features=4), {"weight": torch.nn.Parameter(torch.randn(4, 4)),
                                                           "bias": torch.nn.Parameter(torch.zeros(4))}))
        import numpy as np

        fc.meta["state"].update(weight_gain=np.float64(0.5), activation="linear",  # as NVIDIA's layers keep them
                                bias_init=np.zeros(4, dtype=np.float32))
        mapping = Persistent(reconstruct, "MappingNetwork", source, module_state(
            util.EasyDict(z_dim=4, w_dim=4), buffers={"w_avg": torch.randn(4)}, modules={"fc0": fc}))
        generator = Persistent(reconstruct, "Generator", source, module_state(
            util.EasyDict(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=3),
            modules={"mapping": mapping}))
        data = {"G": generator, "D": Persistent(reconstruct, "Discriminator", source, module_state({})),
                "G_ema": generator, "training_set_kwargs": util.EasyDict(resolution=16), "augment_pipe": None}
        with open(path, "wb") as stream:
            pickle.dump(data, stream)
    return fc.meta["state"]["_parameters"]["weight"]


def test_a_tiny_nvidia_pickle_loads_as_records_without_torch_utils_and_without_running_its_source(tmp_path):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "tiny.pkl"
    weight = write_tiny_pickle(path, marker)
    assert b"torch_utils.persistence" in path.read_bytes()  # NVIDIA's layout
    for name in ("torch_utils", "dnnlib"):
        with pytest.raises(ImportError):
            __import__(name)
    records = stylegan_files.load_records(str(path))
    assert set(records) == {"G_ema", "G", "D"} and not marker.exists()
    generator = records["G_ema"]
    assert generator.class_name == "Generator" and generator.init_kwargs["img_resolution"] == 16
    assert generator.source_chars > 0
    state = generator.state_dict()
    assert sorted(state) == ["mapping.fc0.bias", "mapping.fc0.weight", "mapping.w_avg"]
    assert torch.equal(state["mapping.fc0.weight"], weight.detach())


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pkl"
    with open(path, "wb") as stream:
        pickle.dump({"G_ema": Evil()}, stream)
    with pytest.raises(stylegan_files.UnsafePickleError, match=r"asks for (posix|os|nt)\.system"):
        stylegan_files.load_records(str(path))
    assert not marker.exists()


def test_files_that_are_not_network_pickles_are_explained(tmp_path):
    empty = tmp_path / "plain.pkl"
    empty.write_bytes(pickle.dumps({"something": 1}))
    with pytest.raises(LatentWalkError, match="has none of G_ema, G, D"):
        stylegan_files.load_records(str(empty))
    torch.save({"g_ema": {}}, tmp_path / "rosinality.pt")
    with pytest.raises(LatentWalkError):  # a torch.save zip: not a pickle stream this reader takes
        stylegan_files.load_records(str(tmp_path / "rosinality.pt"))
    with pytest.raises(LatentWalkError, match="cannot read"):
        stylegan_files.load_records(str(tmp_path / "missing.pkl"))


def test_a_persistent_record_of_a_class_stylegan_does_not_have_is_refused_without_running_its_source(tmp_path):
    marker = tmp_path / "ran.txt"
    with nvidia_modules() as (persistence, _util):
        strange = Persistent(persistence._reconstruct_persistent_obj, "Backdoor",
                             f"open({str(marker)!r}, 'w').write('ran')\n", module_state({}))
        with open(tmp_path / "strange.pkl", "wb") as stream:
            pickle.dump({"G_ema": strange}, stream)
    with pytest.raises(stylegan_files.UnsafePickleError, match="class 'Backdoor'"):
        stylegan_files.load_records(str(tmp_path / "strange.pkl"))
    assert not marker.exists()


def test_a_rosinality_checkpoint_gives_g_ema_and_its_average_latent_and_refuses_code(tmp_path):
    import argparse

    weights = {"style.1.weight": torch.randn(4, 4), "input.input": torch.randn(1, 8, 4, 4)}
    path = tmp_path / "maua.pt"
    torch.save({"g_ema": weights, "g": weights, "latent_avg": torch.ones(4),
                "args": argparse.Namespace(size=16, latent=4)}, path)
    found = stylegan_files.load_rosinality(str(path))
    assert sorted(found) == ["input.input", "latent_avg", "style.1.weight"]
    assert torch.equal(found["style.1.weight"], weights["style.1.weight"])

    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"g_ema": weights, "extra": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(stylegan_files.UnsafePickleError, match=r"asks for (posix|os|nt)\.system") as refused:
        stylegan_files.load_rosinality(str(tmp_path / "evil.pt"))
    assert "weights_only" not in str(refused.value)  # not torch's advice to load it with code after all
    assert not marker.exists()
    torch.save({"state_dict": weights}, tmp_path / "other.pt")
    with pytest.raises(LatentWalkError, match="no 'g_ema'"):
        stylegan_files.load_rosinality(str(tmp_path / "other.pt"))


def test_a_tensorflow_stylegan_pickle_is_named_as_such(tmp_path):
    tflib = types.ModuleType("dnnlib.tflib.network")
    network = type("Network", (), {"__module__": "dnnlib.tflib.network"})
    tflib.Network = network
    names = {"dnnlib": types.ModuleType("dnnlib"), "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
             "dnnlib.tflib.network": tflib}
    sys.modules.update(names)
    try:
        data = pickle.dumps((None, None, network()))
    finally:
        for name in names:
            sys.modules.pop(name, None)
    path = tmp_path / "karras2019.pkl"
    path.write_bytes(data)
    with pytest.raises(stylegan_files.UnsafePickleError, match="TensorFlow StyleGAN pickle"):
        stylegan_files.load_records(str(path))


def test_damaged_files_are_named_with_what_to_do_never_a_traceback(tmp_path):
    from blender_latentwalk.engine.generators import stylegan

    folder = stylegan.make_tiny_models(str(tmp_path / "tiny"))
    for kind, path in folder.items():
        data = open(path, "rb").read()
        for cut in (len(data) // 3, len(data) - 7):
            damaged = tmp_path / f"damaged-{kind}{os.path.splitext(path)[1]}"
            damaged.write_bytes(data[:cut])
            with pytest.raises(LatentWalkError, match=r"damaged|not a readable|not a PyTorch|no 'g_ema'") as error:
                stylegan.load_network(str(damaged))
            assert str(damaged) in str(error.value) and "download it again" in str(error.value)
    html = tmp_path / "model.pt"
    html.write_bytes(b"<html>Sign in to download</html>")
    with pytest.raises(LatentWalkError, match="not a PyTorch checkpoint"):
        stylegan.load_network(str(html))
    renamed = tmp_path / "nvidia.pt"
    renamed.write_bytes(open(folder["stylegan2"], "rb").read())
    with pytest.raises(LatentWalkError, match="NVIDIA network pickle.*rename it to .pkl|not a PyTorch checkpoint"):
        stylegan.load_network(str(renamed))


def test_a_protocol_3_pickle_with_a_whole_module_state_loads(tmp_path):
    """Python 3.7 (StyleGAN2-ADA-PyTorch's) wrote protocol 3, where a module's _non_persistent_buffers_set is a
    global builtins.set: the stand-in StyleGAN2 is written that way, with the whole module state."""
    from blender_latentwalk.engine.generators import stylegan

    folder = stylegan.make_tiny_models(str(tmp_path / "tiny"))
    data = open(folder["stylegan2"], "rb").read()
    assert data[:2] == b"\x80\x03" and b"builtins\nset" in data and b"_non_persistent_buffers_set" in data
    assert stylegan.load_network(folder["stylegan2"])[1] == "StyleGAN2"
