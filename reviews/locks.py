"""One writer per output directory.

A run that writes a directory (a preprocessing output, a job dir, a workflow
run, a serving dir) holds an exclusive `fcntl.flock` on a lock file beside it,
DIR/../.NAME.lock, taken before anything is deleted or written and held until
the run ends. Beside, not inside: `--overwrite` deletes the directory, and a
lock file deleted under its holder would let the next writer lock a new one.
The kernel releases the lock when its holder exits or is killed, so a crashed
run leaves no stale lock; the file itself stays (emptied by a holder that ends
normally) and is reused.

gs:// paths take no lock here: a lock on Cloud Storage would be an object
created with a generation precondition (google-cloud-storage), which cannot be
tested offline; docs/faults.md says what guards those runs instead.
"""
import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
import time

from reviews.errors import OneLineError
from reviews.storage import StorageError, storage_cause


class LockHeld(OneLineError):
    """Another process is writing the same directory."""


def lock_path(directory: str) -> str:
    directory = os.path.abspath(directory.rstrip("/") or "/")
    return os.path.join(os.path.dirname(directory), f".{os.path.basename(directory)}.lock")


def written_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def is_gone(holder: dict) -> bool:
    """A holder of this machine whose process no longer runs: a name left by a killed run."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False


def named_holder(fd: int) -> str | None:
    """The holder as it wrote itself into the lock file, or None when the file
    names nobody alive (not yet written, already emptied, or a killed run's)."""
    holder = written_holder(fd)
    if not holder.get("pid") or is_gone(holder):
        return None
    return (f"{holder.get('role', 'a run')} (pid {holder['pid']} on {holder.get('host', '?')}, "
            f"since {holder.get('since', '?')})")


NAME_WAIT_S = 5.0


def taken_or_holder(fd: int, wait_s: float = NAME_WAIT_S) -> str | None:
    """Takes the lock (None), or says who holds it.

    A holder names itself just after it takes the lock and empties the file
    just before it lets go, so a lock held by nobody named is either being
    taken (its holder may be descheduled for a while on a loaded machine: wait
    for the name) or being released (try the lock again). Giving up at the
    first empty read made a writer that lost a race to a short run report
    "another process" for a lock that was already free a moment later."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            pass
        name = named_holder(fd)
        if name is not None:
            return name
        if time.monotonic() >= deadline:
            return "another process"
        time.sleep(0.01)


@contextlib.contextmanager
def exclusive_writer(directory: str, role: str):
    """Holds DIR's lock for the block, or raises LockHeld naming the holder."""
    if "://" in directory:
        yield
        return
    path = lock_path(directory)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StorageError(f"cannot lock {directory} ({path}): {storage_cause(error) or error.strerror}") from None
    try:
        holder = taken_or_holder(fd)
        if holder is not None:
            raise LockHeld(f"{directory} is being written by {holder}; wait for it to finish "
                           f"(lock {path})")
        holder = {"role": role, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "command": " ".join(sys.argv)[:1000]}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only its holder goes unnamed
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # our name goes with the lock
    finally:
        os.close(fd)  # releases the lock
