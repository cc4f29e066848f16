"""reviews.locks: one writer per directory, between processes, released by a kill."""
import json
import os
import shutil
import signal

import pytest

from reviews import locks
from tests.conftest import lock_holder

@pytest.fixture
def holder(tmp_path):
    """A process of its own that holds the lock of tmp_path/out until stopped."""
    with lock_holder(tmp_path / "out") as process:
        yield process


def test_a_second_writer_is_refused_with_the_holders_name(holder, tmp_path):
    with pytest.raises(locks.LockHeld) as refused:
        with locks.exclusive_writer(str(tmp_path / "out"), "second"):
            pytest.fail("two writers held one directory")
    message = str(refused.value)
    assert "\n" not in message and str(tmp_path / "out") in message
    assert "test holder" in message and f"pid {holder.pid}" in message


def test_the_lock_goes_with_its_holder_even_when_killed(holder, tmp_path):
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with locks.exclusive_writer(str(tmp_path / "out"), "next"):  # no stale lock to clear by hand
        written = json.loads(open(locks.lock_path(str(tmp_path / "out"))).read())
    assert written["role"] == "next" and written["pid"] == os.getpid()


def test_the_lock_lies_beside_the_directory_so_deleting_it_keeps_the_lock(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert locks.lock_path(str(out) + "/") == str(tmp_path / ".out.lock")
    with locks.exclusive_writer(str(out), "first"):
        shutil.rmtree(out)  # what --overwrite does under the lock
        with pytest.raises(locks.LockHeld):
            with locks.exclusive_writer(str(out), "second"):
                pass


def test_one_process_holds_two_directories_and_releases_both(tmp_path):
    with locks.exclusive_writer(str(tmp_path / "run"), "run"), locks.exclusive_writer(str(tmp_path / "run" / "prep"), "prep"):
        pass
    with locks.exclusive_writer(str(tmp_path / "run"), "again"):
        pass


def test_object_store_paths_take_no_local_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with locks.exclusive_writer("gs://bucket/out", "cloud"), locks.exclusive_writer("gs://bucket/out", "cloud too"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_released_lock_names_nobody_and_a_killed_runs_name_is_not_taken_for_the_holder(tmp_path):
    import socket
    import subprocess
    import sys

    out = str(tmp_path / "out")
    with locks.exclusive_writer(out, "first"):
        pass
    assert open(locks.lock_path(out)).read() == ""  # released: its name went with it
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = locks.lock_path(out)
    for pid, expected in ((int(gone.stdout), None), (os.getpid(), f"stale (pid {os.getpid()}")):
        with open(path, "w") as handle:
            json.dump({"role": "stale", "pid": pid, "host": socket.gethostname(), "since": "then"}, handle)
        fd = os.open(path, os.O_RDONLY)
        try:
            name = locks.named_holder(fd)
            assert name == expected if expected is None else name.startswith(expected)
        finally:
            os.close(fd)


def raw_holder(path, started, name_after_s, hold_s, release):
    """A writer that takes the lock like exclusive_writer but writes its name only
    after name_after_s (a holder descheduled on a loaded machine) and lets go
    after hold_s (a short run), emptying the file first as exclusive_writer does."""
    import fcntl
    import socket
    import threading
    import time

    def hold():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        started.set()
        time.sleep(name_after_s)
        os.pwrite(fd, json.dumps({"role": "slow starter", "pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        release.wait(hold_s)
        os.ftruncate(fd, 0)
        os.close(fd)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def test_a_holder_slow_to_write_its_name_is_still_named(tmp_path):
    import threading

    out = str(tmp_path / "out")
    started, release = threading.Event(), threading.Event()
    thread = raw_holder(locks.lock_path(out), started, name_after_s=1.0, hold_s=30, release=release)
    started.wait(10)
    try:
        with pytest.raises(locks.LockHeld, match="is being written by slow starter"):
            with locks.exclusive_writer(out, "second"):
                pytest.fail("two writers held one directory")
    finally:
        release.set()
        thread.join(10)


def test_a_lock_let_go_while_its_holder_is_looked_up_is_taken(tmp_path):
    """The CI failure of two pushes at once: the first push ended between the
    second's refused flock and its read of the name, which found the file
    already emptied and reported "another process" for a free lock."""
    import threading

    out = str(tmp_path / "out")
    started, release = threading.Event(), threading.Event()
    thread = raw_holder(locks.lock_path(out), started, name_after_s=0.3, hold_s=0, release=release)
    started.wait(10)
    with locks.exclusive_writer(out, "second"):
        written = json.loads(open(locks.lock_path(out)).read())
    thread.join(10)
    assert written["role"] == "second" and written["pid"] == os.getpid()
