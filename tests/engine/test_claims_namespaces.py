"""A claim is judged by its pid only when its pid provably names a process of the judge's pid space
(same host, boot and pid namespace on Linux); otherwise by its heartbeat alone.

The bug this guards against: two containers with host networking share a host name but not a pid
namespace; the second render found no process with the first's pid, took its live claim over and
deleted its temporary files."""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import pytest

from blender_latentwalk.engine.render import claims

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "00000000000000ab"


def _unused_pid():
    """A pid that no process of this namespace has (so judging by pid would call its claim dead)."""
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as stream:
            top = min(int(stream.read()), 4_000_000)
    except (OSError, ValueError):
        top = 32768
    candidates = random.Random(os.getpid()).sample(range(1000, top), 200)
    return next(pid for pid in candidates if not claims.pid_alive(pid))


def _write_claim(folder, record, heartbeat_age=0.0, token=TOKEN):
    path = os.path.join(folder, f"{claims.CLAIM_PREFIX}{token}.json")
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(record, stream)
    stamp = time.time() - heartbeat_age
    os.utime(path, (stamp, stamp))
    temp = os.path.join(folder, f"{claims.temp_prefix(token)}frame_000003.png.x1.tmp")
    with open(temp, "wb") as stream:
        stream.write(b"being written")
    return path, temp


def _record(pid, space, host=None):
    record = {"pid": pid, "host": host or socket.gethostname(), "since": time.time() - 5, "frames": [[1, 5]]}
    if space is not ...:
        record["pid_space"] = space
    return record


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _other_namespace(here):
    """A Linux pid space of this boot (where known) but another pid namespace."""
    return {"system": "linux", "boot_id": (here or {}).get("boot_id", "a-boot"), "pid_ns": "pid:[1]"}


# Unit tests: claim files as another pid namespace, another boot, this one, or an old render wrote them.

@pytest.mark.parametrize("kind", ["other pid namespace", "other boot", "other host", "old format"])
def test_a_claim_whose_pid_proves_nothing_here_lives_while_its_heartbeat_is_fresh(kind, tmp_path):
    here = claims.pid_space()
    space = {"other pid namespace": _other_namespace(here),
             "other boot": dict(here or {"system": "linux", "pid_ns": "pid:[1]"}, boot_id="another-boot"),
             "other host": here,
             "old format": ...}[kind]
    host = "another-host" if kind == "other host" else None
    path, temp = _write_claim(str(tmp_path), _record(_unused_pid(), space, host))
    with pytest.raises(claims.FolderBusy) as refused:
        claims.claim(str(tmp_path), [3])
    message = str(refused.value)
    assert f"frees itself {claims.STALE_AFTER_S:.0f} s after its last heartbeat" in message and "\n" not in message
    assert os.path.exists(path) and os.path.exists(temp)  # neither the claim nor its files were touched
    mine = claims.claim(str(tmp_path), [7])  # disjoint frames proceed
    mine.release()
    assert os.path.exists(path) and os.path.exists(temp)


@pytest.mark.parametrize("kind", ["other pid namespace", "old format"])
def test_a_claim_whose_pid_proves_nothing_here_dies_with_its_heartbeat(kind, tmp_path):
    space = _other_namespace(claims.pid_space()) if kind == "other pid namespace" else ...
    path, temp = _write_claim(str(tmp_path), _record(_unused_pid(), space), heartbeat_age=claims.STALE_AFTER_S + 5)
    mine = claims.claim(str(tmp_path), [3])
    mine.release()
    assert not os.path.exists(path) and not os.path.exists(temp)


def test_a_claim_of_this_pid_space_whose_process_is_gone_is_taken_over_at_once(tmp_path):
    if claims.pid_space() is None:
        pytest.skip(f"nothing proves a pid on {sys.platform} here: claims are judged by heartbeat only")
    path, temp = _write_claim(str(tmp_path), _record(_dead_pid(), claims.pid_space()))  # a fresh heartbeat
    mine = claims.claim(str(tmp_path), [3])
    mine.release()
    assert not os.path.exists(path) and not os.path.exists(temp)


def test_a_live_claim_of_this_pid_space_is_refused_without_the_heartbeat_note(tmp_path):
    other = claims.claim(str(tmp_path), [3])
    try:
        with pytest.raises(claims.FolderBusy) as refused:
            claims.claim(str(tmp_path), [3])
    finally:
        other.release()
    message = str(refused.value)
    assert f"process {os.getpid()} on {socket.gethostname()}" in message
    assert ("heartbeat" in message) == (claims.pid_space() is None)


def test_a_claim_records_its_pid_space():
    here = claims.pid_space()
    if sys.platform.startswith("linux"):
        assert here is not None, "Linux without /proc/sys/kernel/random/boot_id or /proc/self/ns/pid?"
        assert here["system"] == "linux" and here["pid_ns"].startswith("pid:[") and len(here["boot_id"]) >= 32
        assert here == claims.pid_space()
    assert claims.same_pid_space("h", here, "h", here) == (here is not None)
    assert not claims.same_pid_space("h", here, "other", here)


def test_boot_times_agree_within_the_tolerance_only():
    mac = {"system": "darwin", "boot_time": 1_700_000_000.25}
    assert claims.same_pid_space("mac", mac, "mac", dict(mac, boot_time=mac["boot_time"] + 1.5))
    assert not claims.same_pid_space("mac", mac, "mac", dict(mac, boot_time=mac["boot_time"] + 3600))
    assert not claims.same_pid_space("mac", mac, "mac", dict(mac, system="windows"))
    assert not claims.same_pid_space("mac", mac, "mac", None)
    assert not claims.same_pid_space("mac", {"system": "darwin"}, "mac", mac)
    linux = {"system": "linux", "boot_id": "b", "pid_ns": "pid:[4026531836]"}
    assert claims.same_pid_space("vm", linux, "vm", dict(linux))
    assert not claims.same_pid_space("vm", dict(linux, pid_ns=""), "vm", dict(linux, pid_ns=""))
    assert not claims.same_pid_space("vm", {"system": "plan9"}, "vm", {"system": "plan9"})


# The real thing: a render in another pid namespace (unshare), same host name, same boot.

_CLAIMER = """
import json, sys
from blender_latentwalk.engine.render import claims
claim = claims.claim(sys.argv[1], range(1, 6))
print(json.dumps({"pid": claim.pid, "path": claim.path, "space": claims.pid_space()}), flush=True)
for line in sys.stdin:
    try:
        claim.check()
        print("still mine", flush=True)
    except Exception as error:
        print(str(error), flush=True)
claim.release()
"""

# pid 1 of the new namespace: sets the namespace's next pid (so the claimer's pid is one this test's
# namespace does not have), then runs the claimer with its stdin and stdout.
_LAUNCHER = """
import subprocess, sys
try:
    with open("/proc/sys/kernel/ns_last_pid", "w") as stream:
        stream.write(str(int(sys.argv[1]) - 1))
except OSError:
    pass
sys.exit(subprocess.call([sys.executable, "-c", sys.argv[2], sys.argv[3]]))
"""

_UNSHARE = (["--user", "--map-root-user", "--pid", "--fork", "--mount-proc"],
            ["--user", "--map-root-user", "--pid", "--fork"],
            ["--pid", "--fork", "--mount-proc"],
            ["--pid", "--fork"])


def _unshare_prefix():
    """An ``unshare`` command line that runs a program in a new pid namespace, or pytest.skip with why not."""
    unshare = shutil.which("unshare")
    if not sys.platform.startswith("linux") or unshare is None:
        pytest.skip(f"no unshare on {sys.platform} (PATH={os.environ.get('PATH')})")
    here, errors = os.readlink("/proc/self/ns/pid"), []
    probe = "import os; print(os.readlink('/proc/self/ns/pid'))"
    for options in _UNSHARE:
        command = [unshare, *options, sys.executable, "-c", probe]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            errors.append(f"{' '.join(options)}: {error}")
            continue
        namespace = result.stdout.strip()
        if result.returncode == 0 and namespace.startswith("pid:[") and namespace != here:
            return [unshare, *options]
        said = result.stderr.strip() or result.stdout.strip()
        errors.append(f"{' '.join(options)}: exit {result.returncode}: {said}")
    pytest.skip("cannot start a process in another pid namespace here: " + " | ".join(errors))


def test_a_live_render_in_another_pid_namespace_is_not_taken_over_while_its_heartbeat_is_fresh(tmp_path):
    prefix = _unshare_prefix()
    folder = str(tmp_path)
    wanted = _unused_pid()
    other = subprocess.Popen([*prefix, sys.executable, "-c", _LAUNCHER, str(wanted), _CLAIMER, folder],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        line = other.stdout.readline()
        assert line, other.stderr.read()
        theirs = json.loads(line)
        assert theirs["space"] and theirs["space"] != claims.pid_space()  # same boot, other pid namespace
        if claims.pid_alive(theirs["pid"]):
            pytest.skip(f"the other namespace's claimer got pid {theirs['pid']}, which a process here has too "
                        "(ns_last_pid not writable): the test would prove nothing")
        token = os.path.basename(theirs["path"])[len(claims.CLAIM_PREFIX):-len(".json")]
        temp = os.path.join(folder, f"{claims.temp_prefix(token)}frame_000003.png.x1.tmp")  # its render's
        with open(temp, "wb") as stream:
            stream.write(b"being written")

        with pytest.raises(claims.FolderBusy) as refused:  # same host name, its pid unknown here: still live
            claims.claim(folder, [3])
        assert f"process {theirs['pid']} on {socket.gethostname()}" in str(refused.value)
        assert "frees itself" in str(refused.value)
        claims.claim(folder, [9]).release()  # disjoint frames proceed, and leave its files alone
        assert os.path.exists(theirs["path"]) and os.path.exists(temp)
        other.stdin.write("check\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "still mine"

        # Its heartbeat stops (as when it is killed): the claim is taken over, and it is told so, truly.
        stale = time.time() - claims.STALE_AFTER_S - 5
        os.utime(theirs["path"], (stale, stale))
        claims.claim(folder, [3]).release()
        assert not os.path.exists(theirs["path"]) and not os.path.exists(temp)
        other.stdin.write("check\n")
        other.stdin.flush()
        told = other.stdout.readline().strip()
        assert "taken over by another render" in told and f"stopped for over {claims.STALE_AFTER_S:.0f} s" in told
    finally:
        try:
            other.stdin.close()
        except OSError:
            pass
        try:
            other.wait(30)
        except subprocess.TimeoutExpired:
            other.kill()
            other.wait()
