"""engine_client.EventPipe: a process's JSON lines read on the calling thread, never blocking in poll."""

import queue
import subprocess
import sys
import threading
import time

import pytest

from blender_latentwalk.blender import engine_client
from blender_latentwalk.engine.errors import LatentWalkError
from blender_latentwalk.engine.worker import messages

# Prints a line in two pieces with a pause between, a line that is not the protocol, waits, then one
# last line without its newline, and exits with status 3.
CHILD = r"""
import sys, time
out = sys.stdout
out.write('{"n": '); out.flush(); time.sleep(0.3)
out.write('1}\nnot json\n'); out.flush(); time.sleep(0.5)
out.write('{"n": 2}\n{"refuse": true}\n{"n": 3}'); out.flush()
sys.exit(3)
"""


def decode(line):
    import json

    value = json.loads(line)
    if value.get("refuse"):
        raise LatentWalkError("another protocol")
    return value


def test_lines_in_order_skipped_noise_refusals_and_the_exit_status_without_a_thread():
    threads_before = threading.active_count()
    process = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    pipe = engine_client.EventPipe(process, decode)
    with pytest.raises(queue.Empty):
        pipe.get_nowait()  # nothing whole yet: returns at once instead of blocking
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        pipe.get(timeout_s=0.05)
    assert time.monotonic() - started < 1.0
    events = [pipe.get(timeout_s=30) for _ in range(5)]
    assert events[0] == {"n": 1} and events[1] == {"n": 2} and events[3] == {"n": 3}
    assert isinstance(events[2], messages.Fatal) and "another protocol" in events[2].message
    assert events[4] == messages.ProcessExited(status=3)
    with pytest.raises(queue.Empty):
        pipe.get_nowait()  # nothing after the end
    assert threading.active_count() == threads_before


def test_a_refused_line_ends_the_process_when_asked():
    child = "import sys, time; print('{\"refuse\": true}', flush=True); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    pipe = engine_client.EventPipe(process, decode, end_on_refusal=True)
    assert isinstance(pipe.get(timeout_s=30), messages.Fatal)
    exited = pipe.get(timeout_s=30)
    assert isinstance(exited, messages.ProcessExited) and exited.status != 0
