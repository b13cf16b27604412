"""Claims: which live render writes which frames of an output folder, and the folder's lock.

Invariants (each names the function that upholds it):

1. A render writes only frames it has claimed: `claim` refuses frames that a live claim holds
   (`FolderBusy`), and a render whose claim was taken over stops changing the manifest
   (`Claim.check`, in `forget_frames`, `record_frames` and before each batch of `run._compute_and_write`).
2. A claim is dead when its process is gone on this host or its heartbeat is older than
   `STALE_AFTER_S`, and a temporary file is removed only when no live claim carries its token:
   `live_claims`.

How claims work: a render claims the Blender frames it will write with a small JSON file in the
folder (``.latentwalk-render-<token>.json``: pid, host, start time, frame ranges), and keeps it alive
by touching it every `HEARTBEAT_S` seconds. Disjoint ranges (a farm's chunks) proceed side by side.
Claims and the manifest are read and changed under one lock per folder (``.latentwalk.lock``, the
`filelock` package: fcntl on POSIX, msvcrt on Windows, an exclusive lock file elsewhere). The render
names its temporary files after its claim's token (`temp_prefix`).
"""

import glob
import json
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from .. import atomic
from ..errors import LatentWalkError
from . import frame_ranges

LOCK_NAME = ".latentwalk.lock"  # guards the folder's manifest and claims
CLAIM_PREFIX = ".latentwalk-render-"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0
LOCK_TIMEOUT_S = 120.0
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


@dataclass
class Claim:
    """A live render's claim on frames of a folder (see the module docstring)."""

    folder: str
    token: str
    pid: int
    host: str
    since: float  # time.time() when the render started
    frames: list  # [[first, last], ...] Blender frame numbers
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def path(self):
        return os.path.join(self.folder, f"{CLAIM_PREFIX}{self.token}.json")

    @property
    def temp_prefix(self):
        return temp_prefix(self.token)

    def describe(self):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"process {self.pid} on {self.host}, rendering since {started}"

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
        return Claim(folder, token, int(data["pid"]), str(data["host"]), float(data["since"]),
                     [[int(a), int(b)] for a, b in data["frames"]])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_dead(claim, path, now):
    try:
        heartbeat = os.stat(path).st_mtime
    except OSError:
        return True
    if now - heartbeat > STALE_AFTER_S:
        return True
    return claim is not None and claim.host == socket.gethostname() and not pid_alive(claim.pid)


def live_claims(folder):
    """The live claims on ``folder``; dead ones (and the temporary files of their renders) are removed.

    Call with the folder locked.
    """
    now, live = time.time(), []
    for path in glob.glob(os.path.join(glob.escape(folder), CLAIM_PREFIX + "*.json")):
        claim = _read_claim(folder, path)
        if _is_dead(claim, path, now):
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


def claim(folder, frame_numbers):
    """Claim ``frame_numbers`` (Blender frames) of ``folder`` for this process; returns a `Claim`
    whose heartbeat runs until `Claim.release`. Raises `FolderBusy` naming the other render when a
    live claim overlaps."""
    ranges = frame_ranges.to_ranges(frame_numbers)
    lock = locked(folder)
    try:
        for other in live_claims(folder):
            common = _overlap(ranges, other.frames)
            if common:
                raise FolderBusy(
                    f"frames {frame_ranges.describe(common)} of '{folder}' are being rendered by {other.describe()}: "
                    "wait for it to finish (or stop it), or render other frames.")
        mine = Claim(folder, secrets.token_hex(8), os.getpid(), socket.gethostname(), time.time(), ranges)
        record = {"pid": mine.pid, "host": mine.host, "since": mine.since, "frames": ranges}
        atomic.write_text(mine.path, json.dumps(record), temp_prefix=mine.temp_prefix)
    finally:
        lock.release()
    threading.Thread(target=mine._heartbeat, name="latentwalk-claim-heartbeat", daemon=True).start()
    return mine
