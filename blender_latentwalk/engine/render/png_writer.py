"""Writing frames: PNG files named by Blender frame number, written atomically, on a bounded pool
of threads so that encoding and writing never hold up the device."""

import hashlib
import io
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import atomic
from ..errors import LatentWalkError

FRAME_PATTERN = "frame_{:06d}.png"
MAX_PENDING_BYTES = 256 * 1024 * 1024  # frames waiting for the writer: 85 batches of 4 at 512x512, 2 of 16 at 1080p


def frame_path(folder, blender_frame):
    return os.path.join(folder, FRAME_PATTERN.format(blender_frame))


def ensure_writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as error:
        raise LatentWalkError(
            f"cannot write frames to '{folder}' ({error.strerror}): choose a folder you can write to."
        ) from None


PNG_COMPRESS_LEVEL = 1  # zlib level of Blender's own default (15%): frames are an intermediate, speed first


@dataclass(frozen=True)
class WrittenFile:
    """What the manifest records of a file just written: taken from the file itself before it was
    renamed into place, so a file another render put there afterwards never matches it."""

    sha256: str  # hex digest of the bytes
    bytes: int
    mtime_ns: int


def encode_png(image):
    """PNG bytes of an (height, width, 3) uint8 array or a PIL image (zlib releases the GIL meanwhile)."""
    from PIL import Image  # here, not at the top: Blender's own Python may lack Pillow

    picture = Image.fromarray(image, mode="RGB") if hasattr(image, "shape") else image
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def write_png(path, image, temp_prefix=None):
    """Write an (height, width, 3) uint8 image as PNG atomically (`atomic.write_via`): a crash never
    leaves a half-written frame under the final name. Returns a `WrittenFile`.

    temp_prefix : see `atomic.write_via`.
    """
    data = encode_png(image)
    identity = []

    def write(stream):
        stream.write(data)
        stream.flush()
        status = os.fstat(stream.fileno())  # the size and time the file keeps through the rename
        identity.append(WrittenFile(hashlib.sha256(data).hexdigest(), status.st_size, status.st_mtime_ns))

    atomic.write_via(path, write, temp_prefix=temp_prefix)
    return identity[0]


def writer_threads():
    """PNG threads of a render: zlib's compression is the slow part and runs without the GIL, so a few
    threads keep up with a GPU; more than the CPU has would only take from the device's own thread."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class FrameWriter:
    """Encodes and writes a render's PNG frames on ``threads`` threads while the device computes the next.

    A batch is handed over with `submit`. Its ``before_writing`` runs before the first of its files
    changes, and its ``on_written`` once every one of its files is complete on disk (the render takes
    the frames out of the manifest in the first and records them in the second: a frame is never
    recorded before its file is whole). Callbacks run one at a time. At most ``max_pending_bytes`` of
    frames wait or are being written (at least one batch, whatever its size), so memory stays bounded
    however long the song: `submit` waits for room.

    The first error (a full disk, a lost permission, a callback's error) is raised by the next `submit`
    or by `close`, and nothing more is written after it; the frames already written, of that batch
    too, are still handed to their ``on_written``.
    threads : 0 writes each batch inside `submit` (nothing overlaps).
    """

    def __init__(self, threads, temp_prefix=None, max_pending_bytes=None):
        self.threads, self.temp_prefix = int(threads), temp_prefix
        self.max_pending_bytes = int(MAX_PENDING_BYTES if max_pending_bytes is None else max_pending_bytes)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="latentwalk-png") if self.threads else None
        self._room = threading.Condition()
        self._pending_bytes = 0
        self.peak_pending_bytes = 0  # the most that ever waited, for tests and the benchmark
        self._callback_lock = threading.Lock()
        self._error_lock = threading.Lock()
        self._error, self._failed, self._raised = None, False, False

    def submit(self, paths, pixels, before_writing, on_written, n_bytes):
        """Write one batch: ``paths[k]`` gets frame k of ``pixels()``.

        pixels : callable() -> np.ndarray (n, height, width, 3) uint8, called once, on a writer thread
            (so a copy from the device can still be under way when `submit` returns).
        before_writing : callable(), run once before the first file of the batch is written.
        on_written : callable({path: `WrittenFile`}) with the files of the batch that are complete.
        n_bytes : the batch's size in memory, counted against ``max_pending_bytes``.
        """
        self._raise_error()
        batch = _Batch(list(paths), pixels, before_writing, on_written, n_bytes)
        if self._pool is None:
            for position in range(len(batch.paths)):
                self._write_one(batch, position)
            self._raise_error()
            return
        with self._room:
            self._room.wait_for(lambda: self._pending_bytes == 0
                                or self._pending_bytes + n_bytes <= self.max_pending_bytes)
            self._pending_bytes += n_bytes
            self.peak_pending_bytes = max(self.peak_pending_bytes, self._pending_bytes)
        for position in range(len(batch.paths)):
            self._pool.submit(self._write_one, batch, position)

    def close(self):
        """Wait for every submitted frame; raise the first error, if it was not raised yet."""
        self._wait()
        self._raise_error()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is not None:  # already failing: wait for the frames in flight, keep that error
            self._wait()
            return False
        self.close()
        return False

    def _wait(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _fail(self, error):
        with self._error_lock:
            if not self._failed:
                self._error, self._failed = error, True

    def _raise_error(self):
        with self._error_lock:
            if self._failed and not self._raised:
                self._raised = True
                raise self._error

    def _write_one(self, batch, position):
        path = batch.paths[position]
        try:
            if not self._failed:  # after a failure, write no more: the render is stopping
                pixels = batch.start(self._callback_lock)
                if not self._failed:
                    batch.written[path] = write_png(path, pixels[position], self.temp_prefix)
        except BaseException as error:  # noqa: BLE001  (handed to the render's thread)
            self._fail(error)
        finally:
            if batch.one_done():
                self._finish(batch)

    def _finish(self, batch):
        try:
            if batch.written:
                with self._callback_lock:
                    batch.on_written(dict(batch.written))
        except BaseException as error:  # noqa: BLE001
            self._fail(error)
        finally:
            batch.release()
            if self.threads:
                with self._room:
                    self._pending_bytes -= batch.n_bytes
                    self._room.notify_all()


class _Batch:
    """One submitted batch: started (``before_writing``, then its pixels fetched) once, by the first
    thread that needs it; the others wait for that."""

    def __init__(self, paths, pixels, before_writing, on_written, n_bytes):
        self.paths, self.on_written, self.n_bytes = paths, on_written, n_bytes
        self.written = {}
        self._source, self._before_writing, self._pixels = pixels, before_writing, None
        self._left = len(paths)
        self._lock = threading.Lock()

    def start(self, callback_lock):
        """np.ndarray (n, height, width, 3) uint8 of the batch, ``before_writing`` done."""
        with self._lock:
            if self._pixels is None:
                with callback_lock:
                    self._before_writing()
                self._pixels = self._source()
            return self._pixels

    def one_done(self):
        """Count one frame finished (written or failed); True for the batch's last."""
        with self._lock:
            self._left -= 1
            return self._left == 0

    def release(self):
        self._pixels = self._source = None
