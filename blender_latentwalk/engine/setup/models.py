"""Models: which are on this machine, how big, where, and downloading the missing ones.

Three roles, each a name from the catalogue, any hub id, or a local folder:

- ``biggan``: ``biggan-deep-128/256/512``, kept where pytorch-pretrained-biggan keeps them
  (``PYTORCH_PRETRAINED_BIGGAN_CACHE``, default ``~/.pytorch_pretrained_biggan``: files named
  sha256(url).sha256(etag), as its own ``cached_path`` names them), or a folder with config.json +
  pytorch_model.bin.
- ``pipeline``: a diffusers img2img pipeline (sd-turbo, an SD 1.5-class model, sdxl-turbo), and
- ``vae``: a Tiny VAE (taesd, taesdxl); both kept in the Hugging Face cache (``HF_HOME``,
  ``HF_HUB_CACHE``), found with huggingface_hub's own functions.

"On this machine" means loadable: every part the loader reads is there (a pipeline's model_index.json
and each component's config and weights, every shard an index names), so a download that was cut
off never counts as a model.

Downloads run in the engine's Python (the worker, or ``python -m blender_latentwalk.engine models
download NAME``), report bytes done/total, stop at a cancel, and never start in offline mode
(``HF_HUB_OFFLINE=1``). Hub models go through huggingface_hub's ``snapshot_download`` with only the
files the loader reads (no single-file checkpoints, fp16 variants or other frameworks' weights); a
connection that drops mid-file is resumed by huggingface_hub (a Range request from its last 10 MiB
chunk). BigGAN's archive is fetched here over HTTP into ``<name>.incomplete`` in its cache, resumed
with a Range request from where it stopped (also after a cancel or a crash), and renamed into place
only when complete. ``LATENTWALK_BIGGAN_ENDPOINT`` points BigGAN downloads at a mirror, as
``HF_ENDPOINT`` does for the hub.

Every failed download raises a LatentWalkError that starts with "Download failed: " and says what
failed first: "the network: HOST cannot be reached (connection refused)", "the disk is full", "the
hub: ..." (a name it does not have, a gated model); anything else names the exception.

Stand-ins (``make-tiny-models``): untrained tiny models in the real formats, named ``*-UNTRAINED``
(`is_stand_in`); their pictures are noise. They let the whole path run without a GPU or a network.
"""

import dataclasses
import fnmatch
import json
import os
import sys
import traceback
import urllib.parse

from .. import atomic
from ..errors import GET_THE_RENDER_STACK, LatentWalkError, describe_exception, network_reason, says_disk_full

STATE_VERSION = 1
BIGGAN, PIPELINE, VAE = "biggan", "pipeline", "vae"
ROLES = (BIGGAN, PIPELINE, VAE)
ENV_BIGGAN_ENDPOINT = "LATENTWALK_BIGGAN_ENDPOINT"
BIGGAN_HOME = "https://s3.amazonaws.com/models.huggingface.co"
PARTIAL_SUFFIX = ".incomplete"
STAND_IN_MARK = "UNTRAINED"  # in the folder names make-tiny-models gives its stand-ins
ROLE_TITLES = {BIGGAN: "BigGAN", PIPELINE: "SD model", VAE: "Tiny VAE"}


@dataclasses.dataclass(frozen=True)
class Choice:
    name: str
    role: str
    label: str  # short: it fits the default sidebar width


CATALOGUE = (
    Choice("biggan-deep-128", BIGGAN, "BigGAN 128"),
    Choice("biggan-deep-256", BIGGAN, "BigGAN 256"),
    Choice("biggan-deep-512", BIGGAN, "BigGAN 512"),
    Choice("stabilityai/sd-turbo", PIPELINE, "SD Turbo"),
    Choice("stable-diffusion-v1-5/stable-diffusion-v1-5", PIPELINE, "SD 1.5"),
    Choice("stabilityai/sdxl-turbo", PIPELINE, "SDXL Turbo"),
    Choice("madebyollin/taesd", VAE, "Tiny VAE"),
    Choice("madebyollin/taesdxl", VAE, "Tiny VAE XL"),
)


class DownloadCancelled(Exception):
    """The user asked the download to stop; what is complete stays, nothing else counts."""


@dataclasses.dataclass(frozen=True)
class ModelState:
    """Where a model stands on this machine (crosses the worker and CLI boundary as JSON).

    present : every file the loader reads is there
    size_bytes : bytes on disk of the model's files (partial downloads not counted)
    path : the folder (or BigGAN's cache folder) it is in, or would be downloaded to
    missing : one line on what is not there, "" when present
    downloadable : a name this machine could fetch (not a folder, not "none")
    """

    name: str
    role: str
    label: str
    present: bool
    size_bytes: int
    path: str
    missing: str = ""
    downloadable: bool = True

    def to_dict(self):
        return {"version": STATE_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data):
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"model state version {data.get('version')}, expected {STATE_VERSION}")
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})

    def summary(self):
        """One line: 'SD Turbo: on this machine, 2.6 GB, /home/.../snapshots/...'."""
        where = f"{format_size(self.size_bytes)}, {self.path}" if self.present else f"not here ({self.missing})"
        return f"{self.label}: {'on this machine, ' if self.present else ''}{where}"


def format_size(size_bytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} B"


def role_of(name):
    """The role of a catalogue name; hub ids and folders not in it are taken as pipelines."""
    for choice in CATALOGUE:
        if choice.name == name:
            return choice.role
    return BIGGAN if name.startswith("biggan-") else PIPELINE


def label_of(name, role=None):
    """A short label (it fits the default sidebar width): the catalogue's, "BigGAN stand-in" for a
    stand-in, else the folder's or hub id's last part."""
    for choice in CATALOGUE:
        if choice.name == name:
            return choice.label
    if is_stand_in(name):
        if _is_stylegan_file(name):
            return "StyleGAN stand-in"
        return {BIGGAN: "BigGAN stand-in", VAE: "VAE stand-in"}.get(role or role_of(name), "SD stand-in")
    return os.path.basename(os.path.normpath(name)) or name


def is_stand_in(name):
    """True for an untrained stand-in made by make-tiny-models (its folder, or StyleGAN file, is named
    ``*-UNTRAINED``)."""
    return STAND_IN_MARK in os.path.basename(os.path.normpath(name or "")) and os.path.exists(
        os.path.expanduser(name))


# ---------------------------------------------------------------- on this machine


WEIGHT_SUFFIXES = (".safetensors", ".bin")
# Weights the loaders here never read: other frameworks' and single-file checkpoints.
FOREIGN_WEIGHTS = ("*.ckpt", "*.msgpack", "*.onnx", "*.onnx_data", "*.pb", "*.h5", "*.ot", "*.xml", "*.pth", "*.pt",
                   "*.gguf", "*.tflite", "*.mlmodel", "*.mlpackage/*")


def _is_weights(name):
    return name.endswith(WEIGHT_SUFFIXES)


def _is_variant(name):
    """diffusion_pytorch_model.fp16.safetensors: a variant the loader reads only when asked for it."""
    stem = os.path.basename(name).rsplit(".", 1)[0]
    return _is_weights(name) and "." in stem and not stem.endswith(".index")


def _missing_in_model_folder(folder):
    """What a single model folder (config.json + weights, or sharded weights and their index) lacks, or ""."""
    if not os.path.isdir(folder):
        return f"no folder {folder}"
    names = os.listdir(folder)
    if "config.json" not in names:
        return f"no config.json in {folder}"
    weights = [n for n in names if _is_weights(n) and not _is_variant(n)]
    if not weights:
        return f"no weights (.safetensors or .bin) in {folder}"
    for index in (n for n in names if n.endswith(".index.json")):
        try:
            with open(os.path.join(folder, index), encoding="utf-8") as stream:
                shards = set(json.load(stream).get("weight_map", {}).values())
        except (OSError, ValueError) as error:
            return f"{index} in {folder} cannot be read ({error})"
        absent = sorted(s for s in shards if not os.path.isfile(os.path.join(folder, s)))
        if absent:
            return f"{len(absent)} weight shards missing in {folder}, first {absent[0]}"
    return ""


def missing_in_folder(folder, role):
    """What ``folder`` lacks to load as a model of ``role`` ("" when nothing: it loads)."""
    if role == BIGGAN:
        from ..generators import biggan

        absent = [n for n in (biggan.CONFIG_NAME, biggan.WEIGHTS_NAME) if not os.path.isfile(os.path.join(folder, n))]
        return f"no {' and no '.join(absent)} in {folder}" if absent else ""
    if role == VAE:
        return _missing_in_model_folder(folder)
    index_path = os.path.join(folder, "model_index.json")
    try:
        with open(index_path, encoding="utf-8") as stream:
            index = json.load(stream)
    except FileNotFoundError:
        return f"no model_index.json in {folder}"
    except (OSError, ValueError) as error:
        return f"model_index.json in {folder} cannot be read ({error})"
    for component, value in sorted(index.items()):
        if component.startswith("_") or not (isinstance(value, list) and len(value) == 2 and value[0]):
            continue  # settings, and components the pipeline leaves out (safety_checker: [null, null])
        part = os.path.join(folder, component)
        if not os.path.isdir(part) or not os.listdir(part):
            return f"no {component} in {folder}"
        names = os.listdir(part)
        if "config.json" in names or any(_is_weights(n) for n in names):  # a model (a tokenizer or scheduler is not)
            missing = _missing_in_model_folder(part)
            if missing:
                return missing
    return ""


def _files_size(folder):
    """Bytes of the files under ``folder``, links followed (the hub cache's snapshots link to blobs)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def hub_cache_folder():
    """The Hugging Face hub cache as huggingface_hub resolves it (HF_HUB_CACHE, else HF_HOME/hub)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return os.environ.get("HF_HUB_CACHE") or os.path.join(
            os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    return str(constants.HF_HUB_CACHE)


def _hub_snapshot(repo_id, role):
    """The cached snapshot folder of ``repo_id`` (its main revision), or None; never the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # Blender's own Python: the cache's layout, read as huggingface_hub writes it
        return _hub_snapshot_by_layout(repo_id, role)
    for file_name in (("model_index.json",) if role == PIPELINE else ("config.json",)):
        try:
            cached = try_to_load_from_cache(repo_id, file_name)
        except ValueError:  # not a repository id
            return None
        if isinstance(cached, str):
            return os.path.dirname(cached)
    return None


def _hub_snapshot_by_layout(repo_id, role):
    """`_hub_snapshot` without huggingface_hub: models--ORG--NAME/refs/main names the snapshot."""
    if not is_repo_id(repo_id):
        return None
    repo_folder = os.path.join(hub_cache_folder(), "models--" + repo_id.replace("/", "--"))
    try:
        with open(os.path.join(repo_folder, "refs", "main"), encoding="utf-8") as stream:
            snapshot = os.path.join(repo_folder, "snapshots", stream.read().strip())
    except OSError:
        return None
    first = "model_index.json" if role == PIPELINE else "config.json"
    return snapshot if os.path.isfile(os.path.join(snapshot, first)) else None


def is_repo_id(name):
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not os.path.isabs(name) and not name.startswith(("./", "../", "~"))


def _biggan_cache():
    """pytorch-pretrained-biggan's cache folder (PYTORCH_PRETRAINED_BIGGAN_CACHE, as the package reads it)."""
    from ..generators import biggan

    return biggan._biggan_cache_dir()


def state(name, role=None):
    """The `ModelState` of ``name`` for ``role`` (default: as the catalogue has it); never the network."""
    role = role or role_of(name)
    label = label_of(name, role)
    if not name or name.lower() == "none":
        return ModelState(name, role, "none", True, 0, "", "", False)
    expanded = os.path.expanduser(name)
    if role == BIGGAN and _is_stylegan_file(expanded):  # the generator is a StyleGAN file the artist brought
        if not os.path.isfile(expanded):
            return ModelState(name, role, label, False, 0, os.path.abspath(expanded), f"no file {expanded}", False)
        return ModelState(name, role, label, True, os.path.getsize(expanded), os.path.abspath(expanded), "", False)
    if os.path.isdir(expanded) or not _fetchable(name, role):
        missing = missing_in_folder(expanded, role) if os.path.isdir(expanded) else f"no folder {expanded}"
        return ModelState(name, role, label, not missing, _files_size(expanded) if not missing else 0,
                          os.path.abspath(expanded), missing, False)
    if role == BIGGAN:
        return _biggan_state(name, label)
    snapshot = _hub_snapshot(name, role)
    if snapshot is None:
        return ModelState(name, role, label, False, 0, hub_cache_folder(), "not in the Hugging Face cache")
    missing = missing_in_folder(snapshot, role)
    return ModelState(name, role, label, not missing, _files_size(snapshot) if not missing else 0, snapshot,
                      missing and f"incomplete: {missing}")


def _is_stylegan_file(path):
    from ..generators import stylegan

    return stylegan.is_model_file(path)


def _fetchable(name, role):
    """A name downloads can fetch: BigGAN's published names, a hub id for the others."""
    return name in _biggan_names() if role == BIGGAN else is_repo_id(name)


def _biggan_names():
    from ..generators import biggan

    return biggan.KNOWN_MODELS


def _biggan_state(name, label):
    from ..generators import biggan

    try:
        config, weights = biggan.resolve(name)
    except LatentWalkError:
        folder = _biggan_cache()
        return ModelState(name, BIGGAN, label, False, 0, folder, "not in pytorch-pretrained-biggan's cache")
    size = os.path.getsize(config) + os.path.getsize(weights)
    return ModelState(name, BIGGAN, label, True, size, weights)


def catalogue_states(in_use=()):
    """`ModelState` of ``in_use`` ((name, role) pairs, e.g. the scene's settings) and of the catalogue.

    The models in use come first, each once; empty names and "none" are left out.
    """
    seen, states = set(), []
    for name, role in list(in_use) + [(c.name, c.role) for c in CATALOGUE]:
        name = (name or "").strip()
        if not name or name.lower() == "none" or name in seen:
            continue
        seen.add(name)
        states.append(state(name, role))
    return states


def first_missing(in_use):
    """The `ModelState` of the first of ``in_use`` ((name, role) pairs) that is not on this machine, or
    None: what a render checks before its worker loads anything (never the network)."""
    for name, role in in_use:
        name = (name or "").strip()
        if name and name.lower() != "none":
            found = state(name, role)
            if not found.present:
                return found
    return None


def missing_message(missing, what_to_do):
    """The refusal for a missing model (a `ModelState`): "Model missing: BigGAN 'biggan-deep-256' is not on
    this machine: " and ``what_to_do``; a folder is named by its last part (the state has the whole path)."""
    title = ROLE_TITLES.get(missing.role, "model")
    if missing.role == BIGGAN and _is_stylegan_file(os.path.expanduser(missing.name)):
        name = os.path.basename(missing.name)
        return (f"Model missing: StyleGAN file '{name}' does not exist: pick it again with the file button beside "
                "Walk > Generator (headless: --generator FILE), or Use Stand-in Models to try the path.")
    if missing.downloadable:
        return f"Model missing: {title} '{missing.name}' is not on this machine: {what_to_do}"
    folder = os.path.basename(os.path.normpath(missing.name)) or missing.name
    if os.path.isdir(os.path.expanduser(missing.name)):
        lacks = missing.missing.split(" in ", 1)[0] if missing.missing.startswith("no ") else "no model"
        return f"Model missing: {title} folder '{folder}' has {lacks}: {what_to_do}"
    if os.sep in missing.name or missing.name.startswith(("~", ".")):
        return f"Model missing: {title} folder '{folder}' does not exist: {what_to_do}"
    return f"Model missing: {title} '{missing.name}' is neither a folder nor a model to download: {what_to_do}"


# ---------------------------------------------------------------- downloading


def _host(url):
    return urllib.parse.urlsplit(url).netloc or url


def download_failure(name, error, host, folder):
    """The LatentWalkError for a download of ``name`` that raised ``error`` (talking to ``host``, writing
    into ``folder``): what failed first, then what to do. The traceback goes to stderr (the worker's log)."""
    described = describe_exception(error)
    print(f"download of {name} failed: {described}", file=sys.stderr, flush=True)  # the worker's log
    if says_disk_full(described):
        return LatentWalkError(f"Download failed: the disk is full: free space in {_home_short(folder)}, then "
                               "download again (complete files are kept).")
    reason = network_reason(described)
    if reason:
        return LatentWalkError(f"Download failed: the network: {host} cannot be reached ({reason}). Check the "
                               "connection (or proxy), then download again.")
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)  # unforeseen: all of it
    first_line = (str(error).strip().splitlines() or [""])[0][:120]
    return LatentWalkError(f"Download failed: {label_of(name)}: {type(error).__name__}: {first_line}. Download "
                           "again to retry; details in the worker's log.")


def _home_short(path):
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path.startswith(home + os.sep) else path


def offline_reason():
    """Why this process must not download ("" when it may): huggingface_hub's offline mode."""
    try:
        from huggingface_hub import constants

        offline = constants.is_offline_mode() if hasattr(constants, "is_offline_mode") else constants.HF_HUB_OFFLINE
    except ImportError:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline:
        return ("offline mode is on (HF_HUB_OFFLINE=1): unset it to download, or copy the model here from a machine "
                "that has it")
    return ""


def prefer_cancellable_transport():
    """Hub downloads in this process over plain HTTP, unless HF_HUB_DISABLE_XET says otherwise.

    huggingface_hub's Xet transport reports progress from a thread hf_xet owns, where an exception
    (the cancel) is swallowed and the file downloads to the end (huggingface_hub issue #4632);
    its HTTP read loop stops at a cancel. huggingface_hub reads the setting when it is first
    imported, so the worker and the CLI call this before anything imports it.
    """
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")


def download(name, role=None, progress=None, should_stop=None):
    """Fetch ``name`` (a catalogue name or hub id) so that `state` finds it present; returns the new state.

    progress(done_bytes, total_bytes) : called as bytes arrive (total 0 while unknown)
    should_stop() : True to stop (raises `DownloadCancelled`); complete files stay, partial ones
        count for nothing (BigGAN's partial file is kept to resume from).
    Raises LatentWalkError with what to do for offline mode, a folder, or a failed download.
    """
    role = role or role_of(name)
    progress = progress or (lambda done, total: None)
    should_stop = should_stop or (lambda: False)
    if not name or name.lower() == "none" or os.path.isdir(os.path.expanduser(name)):
        raise LatentWalkError(f"'{name}' is a folder (or none), not something to download: it is used as it is.")
    if not _fetchable(name, role):
        raise LatentWalkError(f"'{name}' is neither a folder nor a model to download ("
                              + ("biggan-deep-128, -256 or -512" if role == BIGGAN else "a hub id such as "
                                 "stabilityai/sd-turbo") + ").")
    reason = offline_reason()
    if reason:
        raise LatentWalkError(f"Download refused: {name}: {reason}.")
    before = state(name, role)
    if before.present:
        progress(before.size_bytes, before.size_bytes)
        return before
    try:
        if role == BIGGAN:
            _download_biggan(name, progress, should_stop)
        else:
            _download_hub(name, role, progress, should_stop)
    except ImportError as error:  # a Python without the render stack (e.g. Blender's own)
        raise LatentWalkError(f"Download failed: {name} needs {error.name or error}, which {sys.executable} does "
                              f"not have. {GET_THE_RENDER_STACK}") from None
    except (DownloadCancelled, LatentWalkError):
        raise
    except Exception as error:  # noqa: BLE001  (any library's error: said as what failed, never "the render")
        raise download_failure(name, error, _download_host(name, role), before.path) from None
    after = state(name, role)
    if not after.present:
        raise LatentWalkError(f"Download failed: {name} was downloaded but does not load: {after.missing}.")
    return after


def _download_host(name, role):
    """The host a download of ``name`` talks to (a mirror's, where one is set)."""
    if role == BIGGAN:
        endpoint = os.environ.get(ENV_BIGGAN_ENDPOINT, "").rstrip("/") or BIGGAN_HOME
        return _host(endpoint)
    try:
        from huggingface_hub import constants

        return _host(constants.ENDPOINT)
    except ImportError:
        return _host(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")


# -- hub


def files_to_fetch(file_names, model_index=None):
    """The files of a hub repository the loader reads.

    file_names : every path in the repository
    model_index : the parsed model_index.json of a pipeline, or None for a single model (a Tiny VAE)
    Each component folder (or the root of a single model) without variants (``*.fp16.*``), other
    frameworks' or single-file checkpoints; .bin weights only where a folder has no .safetensors.
    """
    if model_index is not None:
        folders = sorted(k for k, v in model_index.items()
                         if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0])
        wanted = {"model_index.json"}
    else:
        folders, wanted = [""], set()
    by_folder = {}
    for name in file_names:
        folder, _, base = name.rpartition("/")
        by_folder.setdefault(folder, []).append(base)
    for folder in folders:
        names = by_folder.get(folder, [])
        has_safetensors = any(n.endswith(".safetensors") and not _is_variant(n) for n in names)
        for base in names:
            if any(fnmatch.fnmatch(base, pattern) for pattern in FOREIGN_WEIGHTS) or _is_variant(base):
                continue
            if base.endswith(".bin") and has_safetensors:
                continue
            if model_index is None and not (base.endswith(".json") or _is_weights(base)):
                continue  # a single model's README, pictures, example scripts
            if base.endswith(".bin.index.json") and has_safetensors:
                continue
            wanted.add(f"{folder}/{base}" if folder else base)
    return sorted(wanted)


# snapshot_download's bar of file bytes written (as huggingface_hub names it); its other byte bar
# counts network bytes, which differ from file sizes for Xet-stored files.
FILE_BYTES_BAR = "huggingface_hub.snapshot_download"


def _progress_bar_class(on_bytes, should_stop):
    """A tqdm class for snapshot_download: counts its file-bytes bar, and stops the download on cancel.

    huggingface_hub updates its bars from every download thread as data arrives; raising there ends
    each file's download (its temporary file is removed) and the snapshot call.
    """
    from huggingface_hub.utils import tqdm as hub_tqdm

    class Bar(hub_tqdm):
        def __init__(self, *args, **kwargs):
            self._counts = kwargs.get("name") == FILE_BYTES_BAR
            kwargs["disable"] = True  # nothing printed: the worker's protocol carries the progress
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if should_stop():
                raise DownloadCancelled()
            if self._counts and n:
                on_bytes(int(n))

    return Bar


def _download_hub(repo_id, role, progress, should_stop):
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = HfApi().model_info(repo_id, files_metadata=True)
        sizes = {s.rfilename: (s.size or 0) for s in info.siblings or ()}
        model_index = None
        if "model_index.json" in sizes:
            with open(hf_hub_download(repo_id, "model_index.json"), encoding="utf-8") as stream:
                model_index = json.load(stream)
        elif role == PIPELINE:
            raise LatentWalkError(f"{repo_id} has no model_index.json: it is not a diffusers pipeline. Give an "
                                  "img2img pipeline (e.g. stabilityai/sd-turbo), or use it as the Tiny VAE.")
        files = files_to_fetch(sizes, model_index)
        total = sum(sizes[f] for f in files)
        done = [sum(sizes[f] for f in files
                    if isinstance(try_to_load_from_cache(repo_id, f, revision=info.sha), str))]

        def on_bytes(n):
            done[0] += n
            progress(min(done[0], total), total)

        progress(done[0], total)
        # The main branch, as loaders look it up (it records refs/main; the listing above is its commit).
        snapshot_download(repo_id, allow_patterns=files,
                          tqdm_class=_progress_bar_class(on_bytes, should_stop))
    except (DownloadCancelled, LatentWalkError):
        raise
    except HfHubHTTPError as error:
        if network_reason(describe_exception(error)):  # a connection that failed, wrapped as an HTTP error
            raise download_failure(repo_id, error, _download_host(repo_id, role), hub_cache_folder()) from None
        raise LatentWalkError(f"Download failed: the hub: {repo_id}: {str(error).splitlines()[0][:100]}. Check "
                              "the name; for a gated model log in with `hf auth login`.") from None
    except Exception as error:  # noqa: BLE001  (connection errors of requests or httpx, a full disk)
        raise download_failure(repo_id, error, _download_host(repo_id, role), hub_cache_folder()) from None
    progress(total, total)


# -- BigGAN


def _biggan_urls(name):
    """[(canonical URL, URL to fetch)] of the config and the weights: the cache names files by the
    canonical URL (as pytorch-pretrained-biggan does), a mirror only changes where bytes come from."""
    from ..generators import biggan

    endpoint = os.environ.get(ENV_BIGGAN_ENDPOINT, "").rstrip("/")
    urls = []
    for canonical in biggan.archive_urls(name):
        urls.append((canonical, endpoint + canonical[len(BIGGAN_HOME):] if endpoint and canonical.startswith(
            BIGGAN_HOME) else canonical))
    return urls


CHUNK_BYTES = 1 << 16  # a dropped connection loses at most this much
RETRIES = 3


def _download_biggan(name, progress, should_stop):
    import requests
    from pytorch_pretrained_biggan.file_utils import url_to_filename

    cache_dir = _biggan_cache()
    os.makedirs(cache_dir, exist_ok=True)
    heads = []
    try:
        for canonical, url in _biggan_urls(name):
            response = requests.head(url, allow_redirects=True, timeout=30)
            response.raise_for_status()
            heads.append((canonical, url, response.headers.get("ETag"), int(response.headers["Content-Length"])))
    except requests.RequestException as error:
        raise download_failure(name, error, _host(url), cache_dir) from None
    except (KeyError, ValueError) as error:
        raise LatentWalkError(f"Download failed: {_host(url)} answered BigGAN '{name}' without its size "
                              f"({type(error).__name__}: {error}): check {ENV_BIGGAN_ENDPOINT}, then download "
                              "again.") from None
    total = sum(h[3] for h in heads)
    done_before = 0
    for canonical, url, etag, length in heads:
        final = os.path.join(cache_dir, url_to_filename(canonical, etag))
        if os.path.isfile(final) and os.path.getsize(final) == length:
            done_before += length
            continue
        fetch_resumable(url, final + PARTIAL_SUFFIX, length, etag,
                        lambda done, base=done_before: progress(base + done, total), should_stop)
        atomic.commit_file(final + PARTIAL_SUFFIX, final)
        atomic.write_text(final + ".json", json.dumps({"url": canonical, "etag": etag}))
        done_before += length
    progress(total, total)


def _chunks(response):
    """The body as it arrives: urllib3's read1 hands over what has come (up to CHUNK_BYTES), so a
    connection that drops loses none of it (iter_content would drop a partly filled chunk)."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        yield from response.iter_content(CHUNK_BYTES)
        return
    while True:
        chunk = read1(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def fetch_resumable(url, partial_path, length, etag, progress, should_stop):
    """Download ``url`` (``length`` bytes) into ``partial_path``, continuing what is there already.

    Asks for the rest with a Range request (If-Range: the file must still have ``etag``; the server
    sends it whole otherwise, and the partial file starts again). A connection that drops is resumed
    up to RETRIES times; on a cancel or a failure the partial file stays for the next attempt.
    """
    import requests
    import urllib3

    for attempt in range(RETRIES + 1):
        have = os.path.getsize(partial_path) if os.path.isfile(partial_path) else 0
        if have > length:
            have = 0
            os.unlink(partial_path)
        if have == length:
            return
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            if etag:
                headers["If-Range"] = etag
        try:
            with requests.get(url, headers=headers, stream=True, timeout=30) as response:
                response.raise_for_status()
                mode = "ab" if have and response.status_code == 206 else "wb"
                have = have if mode == "ab" else 0
                with open(partial_path, mode) as stream:
                    for chunk in _chunks(response):
                        stream.write(chunk)
                        have += len(chunk)
                        progress(have)
                        if should_stop():  # what arrived is kept: the next attempt continues after it
                            raise DownloadCancelled()
            if have == length:
                return
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            if attempt == RETRIES:
                reason = network_reason(describe_exception(error)) or type(error).__name__
                raise LatentWalkError(f"Download failed: the network: {_host(url)} stopped at {format_size(have)} of "
                                      f"{format_size(length)} ({reason}): download again to continue from "
                                      "there.") from None
    raise LatentWalkError(f"Download failed: {_host(url)} gave {format_size(have)} of {format_size(length)}: "
                          "download again to continue.")
