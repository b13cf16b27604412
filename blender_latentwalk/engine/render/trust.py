"""The trust core: which frames in an output folder are a finished render of the plan as it is now.

Frame keys, the folder's manifest and frame status live here (the claims that let several renders share
a folder: `claims`). The manifest is two files: ``manifest.json``, a snapshot of every frame's record and
the folder's render contract, and ``manifest.journal``, the changes since, one JSON line each
(``{"frame": 12, "entry": {...}}`` or ``{"frame": 12, "forget": true}``), so that a batch costs one
appended write however long the song. A render folds the journal into the snapshot as it starts or ends
once the journal has grown to half the snapshot's size, and when the folder's contract changes
(`compact_locked`, `journal_due`). Invariants (each names the function that upholds it):

1. A frame is current iff its PNG exists, the manifest (snapshot, then journal, the last line of a
   frame winning) records under its Blender frame the key the plan gives it now, the signature of its
   aligned batch as the plan is now (`batch_signature`: its neighbours' keys, at the batch size it was
   made at), the folder's render contract, and the file's size and modification time match what was
   recorded (or, when only the time differs, its SHA-256). `entry_is_current` alone decides (through
   `frame_status`): the render skips what it calls current, Encode Video and the panel refuse or count
   the rest.
2. Keys depend only on what decides pixels: `RENDER_VERSION`, the models' identities
   (`model_identity`: a folder's or a file's contents, a hub snapshot's commit), the img2img settings, the frame's own
   noise vector, class vector and truncation and, when diffusion runs, its own prompt mix, strength,
   guidance, steps and noise seed and the negative prompt (`frame_keys`). Never on the chunk or the
   order. What else can move a frame's last bits is recorded beside the key: its batch's neighbours and
   where the plan ends (`batch_signature`), and the device, the precision, the batch size and the CPU
   threads (the folder's `RenderContract`, 7).
3. The manifest is only changed under the folder lock: a batch appends its lines to the journal in
   one write, the snapshot unread (`update_manifest`), and only a compaction, which reads both, rewrites
   the snapshot atomically and removes the journal (`compact_locked`). Renders writing other frames of one
   folder never lose each other's entries. The journal grows only beside a snapshot of this version
   (`_snapshot_in_this_version`), so an older program refuses the folder rather than miss the journal.
4. A manifest this version cannot read (a damaged snapshot or journal line, another program's file, a
   newer version's) is never merged into or overwritten: `read_manifest` raises `ManifestError`. The
   journal's text after its last newline (a process killed while appending) is ignored, and cut off
   before the next append (`_append`); a line of NUL bytes (a power cut) is ignored. Version 3 (the same
   records, without journal or contract) is read, but its frames, made under no recorded contract, are
   stale; an older version's counts as empty.
5. A frame is forgotten in the manifest before its file changes, and recorded only once its file is
   complete, with the size and time taken from the file itself: `forget_frames` and `record_frames`
   (run by `png_writer.FrameWriter` before and after a batch's files). Every record names its file's
   size, time and hash, so a record lost (the journal is appended without fsync: a power cut may drop
   its last lines) only makes a frame stale, never a wrong one current.
6. A render writes only frames it has claimed, and stops changing the manifest once its claim was
   taken over: `claims.claim`, `claims.Claim.check` (in `forget_frames`, `record_frames` and before each
   batch of `run._compute_and_write`).
7. The current frames of a folder share one render contract: each record names the contract it was made
   under, and only records of the folder's contract are current. A render into a folder with current
   frames (or another live render) runs under the contract recorded there, taking its batch size and
   threads when it asks for none, and is refused when it asks for others or runs on another device or
   precision; a folder with none takes the render's (`run._settle_contract`, under the folder lock).
"""

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass

from .. import atomic
from ..diffusion import img2img
from ..errors import LatentWalkError
from ..generators.selection import as_generator
from . import claims
from . import png_writer
from .model_identity import model_identity

RENDER_VERSION = 4  # 4: frames scaled and cropped on the device (within rounding of version 3's Pillow)
MANIFEST_VERSION = 4  # 4: a snapshot and an append-only journal, and the folder's render contract
OLDEST_READABLE_MANIFEST = 3  # 3: each frame records its key and its file's size and modification time (no journal)
MANIFEST_NAME = "manifest.json"  # the snapshot: every frame's record as of the last compaction, and the contract
JOURNAL_NAME = "manifest.journal"  # the changes since, one JSON line each
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
    the prompt of one section re-renders only the aligned batches of the frames that use it (a record
    also names its batch's `batch_signature`).
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
    """The folder's manifest.json or manifest.journal is damaged, another program's, or from a newer version."""


def _manifest_problem(path, what):
    other = JOURNAL_NAME if os.path.basename(path) == MANIFEST_NAME else MANIFEST_NAME  # the manifest's other file
    return ManifestError(
        f"'{path}' {what}, so the frames in '{os.path.dirname(path)}' cannot be trusted: move that file "
        f"away, and {other} beside it if there is one (their frames then count as stale and are rendered "
        "again), or choose another Output folder.")


@dataclass(frozen=True)
class FolderManifest:
    """What an output folder's manifest holds: the snapshot with its journal replayed.

    frames : {Blender frame: {"key", "bytes", "mtime_ns", "sha256", "batch_size"}}
    contract : the folder's render contract as recorded (`RenderContract.to_json`), or None
    """

    frames: dict
    contract: dict = None


@dataclass(frozen=True)
class RenderContract:
    """What decides a frame's bytes beside its key: the same key under another contract may round
    differently in the last bits. An output folder records the contract its frames were made under;
    a render into a folder with current frames keeps it (`run.render`).

    device : "cpu (AVX2)" (the CPU and the vector instructions PyTorch dispatches to), "cuda:<GPU name>", "mps"
    precision : the generator's dtype, e.g. "float32", "float16"
    batch_size : frames per aligned batch, as asked (a frame made at a smaller one after running out
        of memory records its own in the manifest)
    threads : PyTorch's CPU threads on a CPU device; None on a GPU
    torch : the PyTorch version: recorded, not compared (see docs/performance.md)
    """

    device: str
    precision: str
    batch_size: int
    threads: int = None
    torch: str = ""

    COMPARED = ("device", "precision", "batch_size", "threads")

    def to_json(self):
        return {"device": self.device, "precision": self.precision, "batch_size": self.batch_size,
                "threads": self.threads, "torch": self.torch}

    @classmethod
    def from_json(cls, data):
        """The contract ``data`` records; ValueError when it is not one."""
        try:
            contract = cls(str(data["device"]), str(data["precision"]), int(data["batch_size"]),
                           None if data.get("threads") is None else int(data["threads"]), str(data.get("torch", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"not a render contract: {data!r}") from None
        return contract

    @property
    def identity(self):
        """16 hex digits of what is compared: each manifest entry records the contract it was made under."""
        compared = json.dumps([getattr(self, name) for name in self.COMPARED])
        return hashlib.sha256(compared.encode()).hexdigest()[:16]

    @classmethod
    def identity_of(cls, data):
        """The `identity` of a recorded contract (`FolderManifest.contract`), None for none or a damaged one."""
        try:
            return cls.from_json(data).identity if data is not None else None
        except ValueError:
            return None

    def describe(self):
        """e.g. "cpu (AVX2), float32, batch size 4, 2 CPU threads"."""
        threads = "" if self.threads is None else f", {cpu_threads_text(self.threads)}"
        return f"{self.device}, {self.precision}, batch size {self.batch_size}{threads}"


def cpu_threads_text(count):
    """"1 CPU thread", "2 CPU threads"."""
    return f"{count} CPU thread{'s' * (count != 1)}"


_HEADER = re.compile(rb'^\{"version": (\d+),')  # how `_write_snapshot` starts the file
_checked_snapshots = {}  # {folder: the snapshot's (device, inode, size, mtime) when it was last seen in this version}


def _snapshot_identity(path):
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _read_snapshot(path):
    """(frames, contract) of the snapshot; ({}, None) when there is none or an older version wrote it."""
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except FileNotFoundError:
        return {}, None
    except OSError as error:
        raise _manifest_problem(path, f"cannot be read ({error.strerror})") from None
    try:
        data = json.loads(text.decode("utf-8"))
    except ValueError:
        raise _manifest_problem(path, "is damaged (not JSON)") from None
    if not (isinstance(data, dict) and isinstance(data.get("version"), int) and isinstance(data.get("frames"), dict)):
        raise _manifest_problem(path, "is not a Latent Walk manifest (another program's file?)")
    if data["version"] < OLDEST_READABLE_MANIFEST:
        return {}, None
    if data["version"] > MANIFEST_VERSION:
        raise _manifest_problem(path, f"was written by a newer version of Latent Walk (manifest version "
                                      f"{data['version']}, this one reads {MANIFEST_VERSION})")
    try:
        frames = {int(frame): dict(entry) for frame, entry in data["frames"].items()}
    except (ValueError, TypeError):
        raise _manifest_problem(path, "is damaged (a frame entry is not a frame number and a record)") from None
    if not all(isinstance(entry.get("key"), str) for entry in frames.values()):
        raise _manifest_problem(path, "is damaged (a frame entry has no key)")
    contract = data.get("contract")
    if contract is not None:
        try:
            RenderContract.from_json(contract)
        except ValueError:
            raise _manifest_problem(path, "is damaged (its render contract is not one)") from None
    return frames, contract


def _replay_journal(path, frames):
    """Apply the journal's lines to ``frames``, in order (the last line of a frame wins).

    The text after the last newline is a line a killed process left half written: ignored (its batch's
    files had not changed yet, or are complete but then recorded by no line: stale). Lines of NUL bytes
    (what a power cut can leave where appended data never reached the disk) are ignored too, and NUL bytes
    before or after a line's record are taken off. Any other
    line that is not a frame's record or forget raises `ManifestError`.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return
    except OSError as error:
        raise _manifest_problem(path, f"cannot be read ({error.strerror})") from None
    lines = [line.strip(b"\0") for line in data.split(b"\n")[:-1]]  # the last part: "" or a torn line
    if not lines:
        return
    try:
        records = json.loads(b"[" + b",".join(line for line in lines if line) + b"]")
    except ValueError:
        records = None
    if records is None or len(records) != sum(1 for line in lines if line) or not all(
            _apply(record, frames) for record in records):
        _find_damage(path, lines)


def _apply(record, frames):
    """Apply one journal record to ``frames``; False when it is not one."""
    if not isinstance(record, dict) or type(record.get("frame")) is not int:
        return False
    if record.get("forget") is True:
        frames.pop(record["frame"], None)
        return True
    entry = record.get("entry")
    if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)):
        return False
    frames[record["frame"]] = entry
    return True


def _find_damage(path, lines):
    """Raise `ManifestError` naming the journal's first line that is not a record."""
    for number, line in enumerate(lines, 1):
        if not line.strip(b"\0"):
            continue
        try:
            good = _apply(json.loads(line), {})
        except ValueError:
            good = False
        if not good:
            raise _manifest_problem(path, f"is damaged (line {number} is not a frame record)")
    raise _manifest_problem(path, "is damaged")  # not reached: some line failed above


def read_manifest(folder):
    """The folder's `FolderManifest`: the snapshot (manifest.json) with the journal (manifest.journal) replayed.

    Nothing when there is no manifest, or when a version before `OLDEST_READABLE_MANIFEST` wrote it (its
    frames then count as stale). Raises `ManifestError` for a file that is not a manifest this version
    can read (damaged, another program's, a newer version's): nothing is mixed in from it.
    Reads without the folder's lock: when a compaction replaces the snapshot meanwhile, it reads again.
    """
    path, journal = os.path.join(folder, MANIFEST_NAME), os.path.join(folder, JOURNAL_NAME)
    for _ in range(10):
        before = _snapshot_identity(path)
        frames, contract = _read_snapshot(path)
        _replay_journal(journal, frames)
        if _snapshot_identity(path) == before:
            break
    return FolderManifest(frames, contract)


def load_manifest(folder):
    """{Blender frame: {"key", "bytes", "mtime_ns", ...}} of the folder (`read_manifest`)."""
    return read_manifest(folder).frames


def _write_snapshot(folder, manifest, temp_prefix):
    text = json.dumps({"version": MANIFEST_VERSION, "contract": manifest.contract,
                       "frames": {str(f): e for f, e in sorted(manifest.frames.items())}})
    path = os.path.join(folder, MANIFEST_NAME)
    atomic.write_text(path, text, temp_prefix=temp_prefix)
    _checked_snapshots[os.path.abspath(folder)] = _snapshot_identity(path)


def compact_locked(folder, temp_prefix=None, contract=None, manifest=None):
    """Rewrite the snapshot with the journal folded in (and ``contract`` as the folder's, when given), then
    remove the journal. Call with the folder locked (`claims.locked`).

    manifest : the `FolderManifest` just read under this lock (default: read now).
    Raises `ManifestError` for a manifest this version cannot read (nothing is overwritten).
    Returns the `FolderManifest` written.
    """
    manifest = manifest if manifest is not None else read_manifest(folder)
    if contract is not None:
        manifest = FolderManifest(manifest.frames, contract.to_json())
    _write_snapshot(folder, manifest, temp_prefix)
    try:
        os.unlink(os.path.join(folder, JOURNAL_NAME))
    except FileNotFoundError:
        pass
    except OSError:
        pass  # (a reader holds it open on Windows) replayed again over the snapshot, it changes nothing
    return manifest


def compact_manifest(folder, temp_prefix=None):
    """`compact_locked` under the folder's lock."""
    lock = claims.locked(folder)
    try:
        return compact_locked(folder, temp_prefix)
    finally:
        lock.release()


def journal_due(folder):
    """Whether the journal has grown to half the snapshot's size (or there is no snapshot): then a render
    folds it in as it starts or ends. A farm's chunk of 64 frames in a song of 100,000 appends a journal a
    hundredth of the snapshot's size, so it rewrites no snapshot: a compaction's cost is spread over
    at least half as many records as the snapshot holds, whatever the song's length."""
    try:
        journal = os.stat(os.path.join(folder, JOURNAL_NAME)).st_size
    except OSError:
        return False
    try:
        snapshot = os.stat(os.path.join(folder, MANIFEST_NAME)).st_size
    except OSError:
        return True
    return 2 * journal >= snapshot


def fold_journal_if_due(folder, temp_prefix=None):
    """`compact_manifest` when `journal_due`, as a render ends; returns whether it compacted."""
    if not journal_due(folder):
        return False
    lock = claims.locked(folder)
    try:
        if journal_due(folder):
            compact_locked(folder, temp_prefix)
            return True
        return False
    finally:
        lock.release()


def _snapshot_in_this_version(folder, temp_prefix):
    """Make sure the folder's snapshot is this version's before the journal grows (so that a program
    that knows no journal refuses the folder): a `stat` when this process saw it already, its first bytes
    when another process replaced it, a compaction (which refuses what it cannot read) when it is
    missing or older. Call with the folder locked."""
    key, path = os.path.abspath(folder), os.path.join(folder, MANIFEST_NAME)
    identity = _snapshot_identity(path)
    if identity is not None and _checked_snapshots.get(key) == identity:
        return
    if identity is not None:
        try:
            with open(path, "rb") as stream:
                header = _HEADER.match(stream.read(32))
        except OSError:
            header = None
        if header is not None and int(header.group(1)) == MANIFEST_VERSION:
            _checked_snapshots[key] = identity
            return
    compact_locked(folder, temp_prefix)


def _append(path, data):
    """Append ``data`` (whole lines) to the journal in one write, after cutting off a torn last line."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    handle = os.open(path, flags, atomic.FILE_MODE)
    try:
        size = os.fstat(handle).st_size
        if size:
            os.lseek(handle, size - 1, os.SEEK_SET)
            if os.read(handle, 1) != b"\n":
                os.ftruncate(handle, _last_line_end(handle, size))
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view):]
    finally:
        os.close(handle)


def _last_line_end(handle, size):
    """The offset just past the journal's last newline (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - 4096)
        os.lseek(handle, start, os.SEEK_SET)
        block = os.read(handle, end - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def update_manifest(folder, changes, temp_prefix=None):
    """Apply ``changes`` ({Blender frame: entry, or None to forget it}) to the folder's manifest: one
    line each, appended to the journal in one write under the folder's lock. The snapshot is not read
    (a `stat` tells it is still the one this process checked), so the cost does not grow with the song;
    renders writing other frames of the folder at the same time never lose each other's lines.
    """
    if not changes:
        return
    data = "".join(json.dumps({"frame": int(frame), "forget": True} if entry is None else
                              {"frame": int(frame), "entry": entry}) + "\n" for frame, entry in changes.items())
    lock = claims.locked(folder)
    try:
        _snapshot_in_this_version(folder, temp_prefix)
        _append(os.path.join(folder, JOURNAL_NAME), data.encode("utf-8"))
    finally:
        lock.release()


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def batch_signature(keys, index, batch_size, n_frames):
    """What a frame's bytes depend on beside its own key: the keys of every frame of its aligned batch
    at ``batch_size`` (plan indices ``k * batch_size ...``, cut at the plan's end). Its neighbours'
    values decide how the batch is split into calls (frames that share a truncation, steps or strength
    share one), and a call's shape can change the last bits. 16 hex digits.

    keys : {plan index: key} (`frame_keys`) of at least the batch's frames.
    """
    first = index // batch_size * batch_size
    members = range(first, min(first + batch_size, n_frames))
    return hashlib.sha256("|".join(keys[member] for member in members).encode()).hexdigest()[:16]


def manifest_entry(key, batch_size, written, batch=None, contract=None):
    """What the manifest records of a frame file just written under ``key``, computed in a
    batch of ``batch_size`` frames (smaller than asked after running out of memory): its size,
    modification time and content hash, from ``written`` (`png_writer.WrittenFile`); its batch's
    `batch_signature` at that batch size and the `RenderContract.identity` it was made under."""
    return {"key": key, "bytes": written.bytes, "mtime_ns": written.mtime_ns, "sha256": written.sha256,
            "batch_size": int(batch_size), "batch": batch, "contract": contract}


def entry_is_current(entry, index, keys, n_frames, contract, path):
    """Whether ``entry`` (a manifest record, or None) says the file at ``path`` is the frame of plan index
    ``index`` as the plan (``keys``, all its `frame_keys`; ``n_frames``) and the folder's contract
    (``contract``: its identity, or None) are now: the frame's own key, its batch's signature at the batch size
    it was made at, the contract it was made under, and the file itself (`_file_matches`)."""
    if entry is None or entry.get("key") != keys[index] or entry.get("contract") != contract or contract is None:
        return False
    batch_size = entry.get("batch_size")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        return False
    return entry.get("batch") == batch_signature(keys, index, batch_size, n_frames) and _file_matches(path, entry)


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


def record_frames(claim, keys_by_number, batch_size, written, batches, contract):
    """Once a batch's files are complete: record those in ``written`` in the manifest.

    keys_by_number : {Blender frame: key} of the batch; batch_size : the batch size they were made at;
    written : {path: `png_writer.WrittenFile`} of the files that are complete; batches : {Blender frame:
    `batch_signature` at ``batch_size``}; contract : the `RenderContract` they were made under.
    Returns the Blender frames recorded, sorted. Raises when ``claim`` was taken over.
    """
    claim.check()
    entries = {}
    for number, key in keys_by_number.items():
        path = png_writer.frame_path(claim.folder, number)
        if path in written:
            entries[number] = manifest_entry(key, batch_size, written[path], batches[number], contract.identity)
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


def current_frames(plan, keys, folder, manifest):
    """Yield, lazily, the Blender frames of ``manifest`` (a `FolderManifest`) that are current for
    ``plan`` (``keys``: its `frame_keys`) under the folder's contract, as `frame_status` tells them."""
    contract = RenderContract.identity_of(manifest.contract)
    for number, entry in manifest.frames.items():
        index = number - plan.frame_start
        if 0 <= index < plan.n_frames and entry_is_current(entry, index, keys, plan.n_frames, contract,
                                                            png_writer.frame_path(folder, number)):
            yield number


def frame_status(plan, generator, settings, folder, plan_indices=None, keys=None):
    """Compare the folder's PNGs and manifest with the frame keys of ``plan`` now.

    generator : as `frame_keys` takes it; plan_indices : plan indices to check (default: all); keys :
    `frame_keys` when already computed.
    Returns a `FrameStatus` in Blender frame numbers (plan.frame_start + index).
    """
    indices = range(plan.n_frames) if plan_indices is None else [int(i) for i in plan_indices]
    keys = keys if keys is not None else frame_keys(plan, generator, settings)
    try:
        manifest, problem = read_manifest(folder), ""
    except ManifestError as error:
        manifest, problem = FolderManifest({}), str(error)
    contract = RenderContract.identity_of(manifest.contract)
    current, stale, missing = [], [], []
    for index in indices:
        number = plan.frame_start + index
        path = png_writer.frame_path(folder, number)
        if not os.path.exists(path):
            missing.append(number)
        elif entry_is_current(manifest.frames.get(number), index, keys, plan.n_frames, contract, path):
            current.append(number)
        else:
            stale.append(number)
    return FrameStatus(tuple(current), tuple(stale), tuple(missing), problem)
