"""The trust core: which frames in an output folder are a finished render of the plan as it is now.

Frame keys, the folder's ``manifest.json`` and frame status live here (the claims that let several
renders share a folder: `claims`), with these invariants (each names the function that upholds it):

1. A frame is current iff its PNG exists, the manifest records under its Blender frame the key the
   plan gives it now, and the file's size and modification time match what was recorded (or, when
   only the time differs, its SHA-256). `frame_status` (with `_file_matches`) alone decides: the
   render skips what it calls current, Encode Video and the panel refuse or count the rest.
2. Keys depend only on what decides pixels: `RENDER_VERSION`, the models' identities
   (`model_identity`: a folder's files, a hub snapshot's commit), the img2img settings, the frame's own
   noise vector, class vector and truncation and, when diffusion runs, its own prompt mix, strength,
   guidance, steps and noise seed and the negative prompt (`frame_keys`). Never on the chunk, the
   order or the batch size (a frame made at a smaller batch after running out of memory is within
   rounding; the manifest records its batch size).
3. The manifest is only written under the folder lock (read, merged, written atomically), so renders
   writing other frames of one folder never lose each other's entries: `update_manifest`.
4. A manifest this version cannot read (damaged, another program's, a newer version's) is never
   merged into or overwritten: `load_manifest` raises `ManifestError`. An older version's counts as
   empty: its frames are stale.
5. A frame is forgotten in the manifest before its file changes, and recorded only once its file is
   complete, with the size and time taken from the file itself: `forget_frames` and `record_frames`
   (run by `png_writer.FrameWriter` before and after a batch's files).
6. A render writes only frames it has claimed, and stops changing the manifest once its claim was
   taken over: `claims.claim`, `claims.Claim.check` (in `forget_frames`, `record_frames` and before each
   batch of `run._compute_and_write`).
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass

from .. import atomic
from ..diffusion import img2img
from ..errors import LatentWalkError
from ..generators.selection import as_generator
from . import claims
from . import png_writer
from .model_identity import model_identity

RENDER_VERSION = 4  # 4: frames scaled and cropped on the device (within rounding of version 3's Pillow)
MANIFEST_VERSION = 3  # 3: each frame records its key and its file's size and modification time
MANIFEST_NAME = "manifest.json"
STATUS_VERSION = 1  # FrameStatus as JSON (the engine CLI's `status` answers the add-on with it)



# Frame keys: what decides a frame's pixels

def model_identities(generator_model, settings):
    """{"generator", "model", "tiny_vae": `model_identity`} of a render's models, read once."""
    return {"generator": model_identity(generator_model), "model": model_identity(settings.model),
            "tiny_vae": model_identity(settings.tiny_vae)}


def uses_diffusion(settings):
    """Whether img2img runs (a model is set and is not "none")."""
    return bool(settings.model) and settings.model.lower() != img2img.NONE


def frame_keys(plan, generator, settings, inputs=None, identities=None):
    """{plan index: hex key} for every frame of the plan.

    generator : an `interface.Generator`, or its model's name, folder or file. A frame's key covers its own walk inputs (as the generator
    says, `frame_bytes`) and, when diffusion runs, its own prompt mix and img2img values: editing
    the prompt of one section re-renders only the frames that use it. BigGAN's keys are as they were
    before other generators came, so its finished frames stay current.
    """
    generator = as_generator(generator)
    inputs = inputs if inputs is not None else generator.inputs(plan)
    identities = identities if identities is not None else model_identities(generator.model, settings)
    diffusion = uses_diffusion(settings)
    img2img_settings = dict(asdict(settings), model=identities["model"], tiny_vae=identities["tiny_vae"])
    common = {"version": RENDER_VERSION, "img2img": img2img_settings}
    if generator.family == "biggan":
        common["biggan"] = identities["generator"]
    else:
        common["generator"] = {"family": generator.family, "model": identities["generator"],
                               **generator.key_settings(plan)}
    if diffusion:
        common["negative_prompt"] = plan.settings["negative_prompt"]
    common = json.dumps(common, sort_keys=True).encode()
    keys = {}
    for index in range(plan.n_frames):
        digest = hashlib.sha256(common)
        digest.update(generator.frame_bytes(inputs, index))
        if diffusion:
            values = {name: float(getattr(plan, name)[index]) for name in ("strength", "guidance", "steps", "noise_seed")}
            values["prompts"] = sorted(plan.frame_prompts(index).items())
            digest.update(json.dumps(values, sort_keys=True).encode())
        keys[index] = digest.hexdigest()
    return keys


# The manifest: which key each frame file was written under

class ManifestError(LatentWalkError):
    """The folder's manifest.json is damaged, another program's, or from a newer version."""


def _manifest_problem(path, what):
    return ManifestError(
        f"'{path}' {what}, so the frames in '{os.path.dirname(path)}' cannot be trusted: move that file "
        "away (its frames then count as stale and are rendered again) or choose another Output folder.")


def load_manifest(folder):
    """{Blender frame: {"key", "bytes", "mtime_ns", ...}} from the folder's manifest.

    {} when there is none, or when an older version wrote it (its frames then count as
    stale). Raises `ManifestError` for a file that is not a manifest this version can read
    (damaged, another program's, a newer version's): nothing is mixed in from it.
    """
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise _manifest_problem(path, f"cannot be read ({error.strerror})") from None
    try:
        data = json.loads(text.decode("utf-8"))
    except ValueError:
        raise _manifest_problem(path, "is damaged (not JSON)") from None
    if not (isinstance(data, dict) and isinstance(data.get("version"), int) and isinstance(data.get("frames"), dict)):
        raise _manifest_problem(path, "is not a Latent Walk manifest (another program's file?)")
    if data["version"] < MANIFEST_VERSION:
        return {}
    if data["version"] > MANIFEST_VERSION:
        raise _manifest_problem(path, f"was written by a newer version of Latent Walk (manifest version "
                                      f"{data['version']}, this one reads {MANIFEST_VERSION})")
    try:
        manifest = {int(frame): dict(entry) for frame, entry in data["frames"].items()}
    except (ValueError, TypeError):
        raise _manifest_problem(path, "is damaged (a frame entry is not a frame number and a record)") from None
    if not all(isinstance(entry.get("key"), str) for entry in manifest.values()):
        raise _manifest_problem(path, "is damaged (a frame entry has no key)")
    return manifest


def update_manifest(folder, changes, temp_prefix=None):
    """Apply ``changes`` ({Blender frame: entry, or None to forget it}) to the folder's manifest.

    Read, merge and write happen under the folder's lock, so renders writing other
    frames of the folder at the same time never lose each other's entries.
    Returns the manifest as written.
    """
    lock = claims.locked(folder)
    try:
        manifest = load_manifest(folder)
        before = dict(manifest)
        for frame, entry in changes.items():
            if entry is None:
                manifest.pop(int(frame), None)
            else:
                manifest[int(frame)] = entry
        if manifest == before and os.path.exists(os.path.join(folder, MANIFEST_NAME)):
            return manifest  # nothing to forget or add: no write (the render asks once a batch)
        text = json.dumps({"version": MANIFEST_VERSION, "frames": {str(f): e for f, e in sorted(manifest.items())}})
        atomic.write_text(os.path.join(folder, MANIFEST_NAME), text, temp_prefix=temp_prefix)
    finally:
        lock.release()
    return manifest


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_entry(key, batch_size, written):
    """What the manifest records of a frame file just written under ``key``, computed in a
    batch of ``batch_size`` frames (smaller than asked after running out of memory): its size,
    modification time and content hash, from ``written`` (`png_writer.WrittenFile`)."""
    return {"key": key, "bytes": written.bytes, "mtime_ns": written.mtime_ns, "sha256": written.sha256,
            "batch_size": int(batch_size)}


def _file_matches(path, entry):
    """True when ``path`` is the file the entry recorded: same size and modification time, or, when
    only the time differs (copied back from a farm node, a sync, a network share), same content."""
    try:
        status = os.stat(path)
    except OSError:
        return False
    if status.st_size != entry.get("bytes"):
        return False
    if status.st_mtime_ns == entry.get("mtime_ns"):
        return True
    return "sha256" in entry and _sha256_of(path) == entry["sha256"]


def forget_frames(claim, numbers):
    """Before the files of Blender frames ``numbers`` change: take them out of the manifest, so a kill
    while writing never leaves new pixels under an old key (or old pixels under a new one).

    Only those frames: the others stay current for the plan they were rendered from (an edit undone
    after a cancelled render then needs only the frames the render reached). Raises when ``claim`` was
    taken over: the render writes nothing more into frames that are no longer its own.
    """
    claim.check()
    update_manifest(claim.folder, dict.fromkeys(numbers), claim.temp_prefix)


def record_frames(claim, keys_by_number, batch_size, written):
    """Once a batch's files are complete: record those in ``written`` in the manifest.

    keys_by_number : {Blender frame: key} of the batch; batch_size : the batch size they were made at;
    written : {path: `png_writer.WrittenFile`} of the files that are complete.
    Returns the Blender frames recorded, sorted. Raises when ``claim`` was taken over.
    """
    claim.check()
    entries = {}
    for number, key in keys_by_number.items():
        path = png_writer.frame_path(claim.folder, number)
        if path in written:
            entries[number] = manifest_entry(key, batch_size, written[path])
    update_manifest(claim.folder, entries, claim.temp_prefix)
    return sorted(entries)


# Frame status: which frames are current

@dataclass(frozen=True)
class FrameStatus:
    """Which frames of a range are, on disk, a finished render of the plan as it is now.

    current : Blender frame numbers whose PNG is the one the manifest records under the frame's key now
    stale : frames with a PNG that is not (other settings, another plan, replaced or changed since)
    missing : frames with no PNG
    problem : one line when manifest.json is damaged or foreign (`ManifestError`), else ""
    """

    current: tuple
    stale: tuple
    missing: tuple
    problem: str = ""  # why the manifest could not be used (then every PNG counts as stale)

    @property
    def total(self):
        return len(self.current) + len(self.stale) + len(self.missing)

    @property
    def complete(self):
        return not self.stale and not self.missing

    @property
    def first_not_current(self):
        """The lowest frame that is stale or missing (None when complete)."""
        return min(self.stale + self.missing, default=None)

    def summary(self):
        """One line, e.g. "238 of 240 frames current (1 stale, 1 missing)"."""
        text = f"{len(self.current)} of {self.total} frames current"
        parts = [f"{len(self.stale)} stale"] * bool(self.stale) + [f"{len(self.missing)} missing"] * bool(self.missing)
        return text + (f" ({', '.join(parts)})" if parts else "") + (f": {self.problem}" if self.problem else "")

    def refusal(self, folder):
        """Why these frames cannot become a video, and what to do (None when complete)."""
        if self.complete:
            return None
        first = self.first_not_current
        why = "missing" if first in self.missing else "not rendered from the scene as it is now"
        return (f"{self.summary()} in '{folder}': frame {first} is {why}. Press Render Frames (or run the "
                "render again): it renders only the frames that are not current.")

    def to_json(self):
        return json.dumps({"version": STATUS_VERSION, "current": self.current, "stale": self.stale,
                           "missing": self.missing, "problem": self.problem})

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        if data.get("version") != STATUS_VERSION:
            raise ValueError(f"frame status version {data.get('version')}, expected {STATUS_VERSION}")
        return cls(tuple(data["current"]), tuple(data["stale"]), tuple(data["missing"]), data.get("problem", ""))


def frame_status(plan, generator, settings, folder, plan_indices=None, keys=None):
    """Compare the folder's PNGs and manifest with the frame keys of ``plan`` now.

    generator : as `frame_keys` takes it; plan_indices : plan indices to check (default: all); keys :
    `frame_keys` when already computed.
    Returns a `FrameStatus` in Blender frame numbers (plan.frame_start + index).
    """
    indices = range(plan.n_frames) if plan_indices is None else [int(i) for i in plan_indices]
    keys = keys if keys is not None else frame_keys(plan, generator, settings)
    try:
        manifest, problem = load_manifest(folder), ""
    except ManifestError as error:
        manifest, problem = {}, str(error)
    current, stale, missing = [], [], []
    for index in indices:
        number = plan.frame_start + index
        path = png_writer.frame_path(folder, number)
        entry = manifest.get(number)
        if not os.path.exists(path):
            missing.append(number)
        elif entry is not None and entry.get("key") == keys[index] and _file_matches(path, entry):
            current.append(number)
        else:
            stale.append(number)
    return FrameStatus(tuple(current), tuple(stale), tuple(missing), problem)
