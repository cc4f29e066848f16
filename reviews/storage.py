"""Full disks, read-only mounts and refused permissions, said in one line.

Such a fault reaches us in many shapes: an OSError with its errno, a
TensorFlow error whose message carries the C library's words, or a Beam worker
error that wraps either in text. `storage_cause` finds the cause in all of
them; `storage_errors_in_one_line` turns it into a StorageError naming the
path, and lets every other error pass unchanged.
"""
import contextlib
import errno
import os
import re
import uuid

from reviews.errors import OneLineError

CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
# The same causes as the C library words them, for errors that carry only text.
MESSAGES = tuple((re.compile(os.strerror(number), re.IGNORECASE), cause) for number, cause in CAUSES.items())
# HDF5 (Keras' .weights.h5) reports a full disk as "errno = 28" in its own words.
H5_ERRNO = re.compile(r"errno\s*=\s*(\d+)")


class StorageError(OneLineError):
    """A path that cannot be written: no space, read-only, or not permitted."""


def storage_cause(error: BaseException | None) -> str | None:
    """The cause, if `error` or anything it wraps is a storage fault."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in CAUSES:
            return CAUSES[error.errno]
        text = str(error)
        for pattern, cause in MESSAGES:
            if pattern.search(text):
                return cause
        match = H5_ERRNO.search(text)
        if match and int(match.group(1)) in CAUSES:
            return CAUSES[int(match.group(1))]
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def storage_errors_in_one_line(path: str, what: str):
    """A storage fault inside the block becomes StorageError("cannot write WHAT PATH: CAUSE")."""
    try:
        yield
    except OneLineError:
        raise
    except Exception as error:  # noqa: BLE001 (re-raised unless it is a storage fault)
        cause = storage_cause(error)
        if cause is None:
            raise
        raise StorageError(f"cannot write {what} {path}: {cause}") from None


def existing_parent(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def writable_problem(directory: str, what: str) -> str | None:
    """Whether a file can be made in `directory` (made if missing): tried, not
    inferred from permission bits (root ignores those; a read-only mount does not)."""
    if "://" in directory:
        return None  # an object store says so on the first write, in words storage_cause reads
    probe = os.path.join(directory, f".write-probe-{uuid.uuid4().hex}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return f"cannot write {what} {directory}: {storage_cause(error) or error.strerror}"
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
    return None


def checked_writable(directory: str, what: str) -> None:
    problem = writable_problem(directory, what)
    if problem:
        raise StorageError(problem)


def free_bytes(path: str) -> int:
    stats = os.statvfs(existing_parent(path))
    return stats.f_bavail * stats.f_frsize


def space_problem(path: str, needed: int, what: str) -> str | None:
    """Whether `needed` bytes fit where `path` goes (local paths; an object store has no such limit)."""
    if "://" in path:
        return None
    free = free_bytes(path)
    if free >= needed:
        return None
    return (f"cannot write {what} {path}: not enough free space ({free / 2**20:.1f} MiB free, "
            f"about {needed / 2**20:.1f} MiB needed with room to spare)")


def checked_space(path: str, needed: int, what: str) -> None:
    problem = space_problem(path, needed, what)
    if problem:
        raise StorageError(problem)


def write_whole(path: str, content: str | bytes) -> None:
    """Writes `path` so that a reader sees the old file or the whole new one,
    never a part: locally under a temporary name, then renamed into place (an
    object store shows an object only once it is whole anyway). A file whose
    presence marks a run finished (report.json, metrics.json) is written so."""
    mode = "wb" if isinstance(content, bytes) else "w"
    if "://" in path:
        import tensorflow as tf  # here, not at the top: the locks need no TensorFlow

        with tf.io.gfile.GFile(path, mode) as handle:
            handle.write(content)
        return
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(content)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
