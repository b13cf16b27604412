"""Claims: which live render writes which frames of an output folder, and the folder's lock.

Invariants (each names the function that upholds it):

1. A render writes only frames it has claimed: `claim` refuses frames that a live claim holds
   (`FolderBusy`), and a render whose claim was taken over stops changing the manifest
   (`Claim.check`, in `forget_frames`, `record_frames` and before each batch of `run._compute_and_write`).
2. A claim is dead when its heartbeat is older than `STALE_AFTER_S`, or when its process is provably
   gone: it ran in the same process id space as the judge (`pid_space`, `same_pid_space`) and its
   pid is no longer there. A temporary file is removed only when no live claim carries its token:
   `live_claims`.

How claims work: a render claims the Blender frames it will write with a small JSON file in the
folder (``.latentwalk-render-<token>.json``: pid, host, start time, frame ranges and the `pid_space`
its pid belongs to), and keeps it alive by touching it every `HEARTBEAT_S` seconds. Disjoint ranges
(a farm's chunks) proceed side by side. Claims and the manifest are read and changed under one lock
per folder (``.latentwalk.lock``, the `filelock` package: fcntl on POSIX, msvcrt on Windows, an
exclusive lock file elsewhere). The render names its temporary files after its claim's token
(`temp_prefix`).

When a pid proves anything (`pid_space`): a pid names a process only within one pid namespace of one
running kernel, and a host name does not tell them apart (containers with host networking share the
host's name but not its pids; two machines may share a name). So a claim is judged by its pid only
when the judge can prove it shares the claim's pid space; otherwise only by its heartbeat, and a
render that stopped there frees its frames `STALE_AFTER_S` after its last heartbeat. What counts as
proof, per system:

- Linux: the same host name, the same boot id (``/proc/sys/kernel/random/boot_id``, new at every
  boot of a kernel, the same in every container on it) and the same pid namespace
  (``/proc/self/ns/pid``, a different one in each container, each WSL2 distribution, each
  ``unshare --pid``). A namespace's number may be reused only once all its processes are gone, so a
  reused number cannot make a live claim look dead.
- macOS and Windows: no pid namespaces, so the same host name and the same boot time (macOS:
  ``kern.boottime``; Windows: the clock less ``GetTickCount64``), equal within
  `BOOT_TIME_TOLERANCE_S` (clock corrections move the estimate a little; a mismatch only costs
  the heartbeat's wait). Two machines with the same name that booted in the same seconds are not a
  case worth a two-minute wait at every restart after a crash. Not covered: a Windows
  process-isolated container given its host's host name (the user's choice, and rare).
- Anything else (BSD jails, systems without ``/proc/self/ns``, unreadable files): no proof, so
  heartbeat only. Claims written before the pid space was recorded: heartbeat only.

A render restarted after a crash on the same machine (same container) therefore takes its dead
claim over at once; one elsewhere waits at most `STALE_AFTER_S`.
"""

import glob
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from .. import atomic
from ..errors import LatentWalkError
from . import frame_ranges

RENDERING, ENCODING = "rendering", "encoding"  # what a claim holds its frames for
LOCK_NAME = ".latentwalk.lock"  # guards the folder's manifest and claims
CLAIM_PREFIX = ".latentwalk-render-"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0
LOCK_TIMEOUT_S = 120.0
BOOT_TIME_TOLERANCE_S = 5.0  # macOS / Windows: boot times this close are the same boot
_TEMP_PATTERN = re.compile(r"^\.latentwalk-([0-9a-f]{16})-.*" + re.escape(atomic.TEMP_SUFFIX) + "$")


class FolderBusy(LatentWalkError):
    """Another live render is writing some of the same frames."""


def folder_lock(folder):
    """The lock that guards the folder's manifest and claims (a context manager)."""
    import filelock

    return filelock.FileLock(os.path.join(folder, LOCK_NAME), timeout=LOCK_TIMEOUT_S)


def locked(folder):
    """`folder_lock`, acquired; a lock that cannot be had in `LOCK_TIMEOUT_S` is an error naming the folder."""
    import filelock

    lock = folder_lock(folder)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LatentWalkError(f"the output folder '{folder}' stayed locked for {LOCK_TIMEOUT_S:.0f} s "
                              f"({os.path.join(folder, LOCK_NAME)}); is a render there stuck?") from None
    return lock


def temp_prefix(token):
    """The name prefix of the temporary files a claim's render writes."""
    return f".latentwalk-{token}-"


def _overlap(ranges_a, ranges_b):
    """[[first, last]] of the frames in both."""
    common = []
    for a_first, a_last in ranges_a:
        for b_first, b_last in ranges_b:
            first, last = max(a_first, b_first), min(a_last, b_last)
            if first <= last:
                common.append([first, last])
    return sorted(common)


def pid_alive(pid):
    """Whether process ``pid`` runs on this machine."""
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, int(pid))  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        try:
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _read_first_line(path):
    with open(path, encoding="ascii") as stream:
        return stream.readline().strip()


def _darwin_boot_time():
    """macOS's ``kern.boottime`` (seconds since the epoch), read with sysctlbyname."""
    import ctypes

    class Timeval(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_int32)]

    sysctlbyname = ctypes.CDLL(None, use_errno=True).sysctlbyname
    sysctlbyname.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p,
                             ctypes.c_size_t]
    sysctlbyname.restype = ctypes.c_int
    value, size = Timeval(), ctypes.c_size_t(ctypes.sizeof(Timeval))
    if sysctlbyname(b"kern.boottime", ctypes.addressof(value), ctypes.byref(size), None, 0) != 0:
        raise OSError(ctypes.get_errno(), "sysctlbyname kern.boottime")
    if value.tv_sec <= 0:
        raise OSError("kern.boottime is not set")
    return value.tv_sec + value.tv_usec / 1e6


def _windows_boot_time():
    """Windows's boot time (seconds since the epoch): the clock less the milliseconds since boot."""
    import ctypes

    tick_count = ctypes.windll.kernel32.GetTickCount64
    tick_count.restype = ctypes.c_uint64
    return time.time() - tick_count() / 1000.0


def pid_space():
    """What proves that a pid names the same process as here (see the module docstring), as recorded
    in a claim: {"system": "linux", "boot_id", "pid_ns"} or {"system": "darwin" / "windows",
    "boot_time"}; None where nothing can be proven (then claims are judged by their heartbeat only)."""
    try:
        if sys.platform.startswith("linux"):
            boot_id, namespace = _read_first_line("/proc/sys/kernel/random/boot_id"), os.readlink("/proc/self/ns/pid")
            if boot_id and namespace:
                return {"system": "linux", "boot_id": boot_id, "pid_ns": namespace}
        elif sys.platform == "darwin":
            return {"system": "darwin", "boot_time": _darwin_boot_time()}
        elif os.name == "nt":
            return {"system": "windows", "boot_time": _windows_boot_time()}
    except (OSError, AttributeError, ValueError):
        pass
    return None


def same_pid_space(host_a, space_a, host_b, space_b):
    """Whether a pid recorded with (``host_a``, ``space_a``) names a process of the same pid space as
    one of (``host_b``, ``space_b``): the same host, and `pid_space`s of the same system that agree.
    Anything unknown or missing: False."""
    if not host_a or host_a != host_b or not isinstance(space_a, dict) or not isinstance(space_b, dict):
        return False
    system = space_a.get("system")
    if system != space_b.get("system"):
        return False
    if system == "linux":
        return all(isinstance(space_a.get(key), str) and space_a.get(key) and space_a.get(key) == space_b.get(key)
                   for key in ("boot_id", "pid_ns"))
    if system in ("darwin", "windows"):
        try:
            return abs(float(space_a["boot_time"]) - float(space_b["boot_time"])) <= BOOT_TIME_TOLERANCE_S
        except (KeyError, TypeError, ValueError):
            return False
    return False


@dataclass
class Claim:
    """A live render's claim on frames of a folder (see the module docstring)."""

    folder: str
    token: str
    pid: int
    host: str
    since: float  # time.time() when the render started
    frames: list  # [[first, last], ...] Blender frame numbers
    space: dict = None  # `pid_space` of its process; None in claims written before it was recorded
    purpose: str = RENDERING  # what the claim is for: RENDERING, or ENCODING (frames held while a video is made)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def path(self):
        return os.path.join(self.folder, f"{CLAIM_PREFIX}{self.token}.json")

    @property
    def temp_prefix(self):
        return temp_prefix(self.token)

    def describe(self):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        doing = "rendering" if self.purpose == RENDERING else "encoding a video"
        return f"process {self.pid} on {self.host}, {doing} since {started}"

    def _heartbeat(self):
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                pass  # taken over or the folder is gone: `check` tells the render

    def check(self):
        """Raise when this claim was taken over (its file is gone): the render must stop writing."""
        if not os.path.exists(self.path):
            raise LatentWalkError(
                f"this render's claim on '{self.folder}' was taken over by another render (its heartbeat "
                f"{self.path} stopped for over {STALE_AFTER_S:.0f} s); finished frames are kept, render again "
                "to go on.")

    def release(self):
        self._stop.set()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _read_claim(folder, path):
    """The `Claim` in ``path``, or None when it is unreadable (half made by a killed process)."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
        token = os.path.basename(path)[len(CLAIM_PREFIX):-len(".json")]
        space = data.get("pid_space")
        return Claim(folder, token, int(data["pid"]), str(data["host"]), float(data["since"]),
                     [[int(a), int(b)] for a, b in data["frames"]], space if isinstance(space, dict) else None,
                     ENCODING if data.get("purpose") == ENCODING else RENDERING)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _provable(claim, host, space):
    """Whether this process can judge ``claim`` by its pid (it shares the claim's pid space)."""
    return same_pid_space(claim.host, claim.space, host, space)


def _is_dead(claim, path, now, host, space):
    """Its heartbeat is older than `STALE_AFTER_S`, or its pid is provably gone (``host``, ``space``: the judge's)."""
    try:
        heartbeat = os.stat(path).st_mtime
    except OSError:
        return True
    if now - heartbeat > STALE_AFTER_S:
        return True
    return claim is not None and _provable(claim, host, space) and not pid_alive(claim.pid)


def live_claims(folder):
    """The live claims on ``folder``; dead ones (and the temporary files of their renders) are removed.

    Call with the folder locked.
    """
    now, live, host, space = time.time(), [], socket.gethostname(), pid_space()
    for path in glob.glob(os.path.join(glob.escape(folder), CLAIM_PREFIX + "*.json")):
        claim = _read_claim(folder, path)
        if _is_dead(claim, path, now, host, space):
            try:
                os.unlink(path)
            except OSError:
                pass
        elif claim is not None:
            live.append(claim)
    tokens = {claim.token for claim in live}
    for name in os.listdir(folder):
        match = _TEMP_PATTERN.match(name)
        if match and match.group(1) not in tokens:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
    return live


def claim(folder, frame_numbers, purpose=RENDERING):
    """Claim ``frame_numbers`` (Blender frames) of ``folder`` for this process; returns a `Claim`
    whose heartbeat runs until `Claim.release`. Raises `FolderBusy` naming the other render (or
    encode) when a live claim overlaps. purpose : RENDERING, or ENCODING (an encode holding its frames)."""
    ranges = frame_ranges.to_ranges(frame_numbers)
    host, space = socket.gethostname(), pid_space()
    lock = locked(folder)
    try:
        for other in live_claims(folder):
            common = _overlap(ranges, other.frames)
            if common:
                elsewhere = "" if _provable(other, host, space) else (
                    f"; if it has stopped (it may run on another machine or in another container, where this "
                    f"render cannot see its process), its claim frees itself {STALE_AFTER_S:.0f} s after its "
                    "last heartbeat")
                held = "being rendered" if other.purpose == RENDERING else "held"
                raise FolderBusy(
                    f"frames {frame_ranges.describe(common)} of '{folder}' are {held} by {other.describe()}: "
                    f"wait for it to finish (or stop it), or render other frames{elsewhere}.")
        mine = Claim(folder, secrets.token_hex(8), os.getpid(), host, time.time(), ranges, space, purpose)
        record = {"pid": mine.pid, "host": mine.host, "since": mine.since, "frames": ranges, "pid_space": space,
                  "purpose": purpose}
        atomic.write_text(mine.path, json.dumps(record), temp_prefix=mine.temp_prefix)
    finally:
        lock.release()
    threading.Thread(target=mine._heartbeat, name="latentwalk-claim-heartbeat", daemon=True).start()
    return mine
