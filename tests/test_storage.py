"""reviews.storage: full disks, read-only mounts and refused permissions in one line."""
import errno
import os

import pytest

from reviews import storage
from tests.conftest import mounted_tmpfs


@pytest.mark.parametrize("error, cause", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    # A Beam worker's error carries the cause only in its text.
    (RuntimeError("OSError: [Errno 28] No space left on device [while running 'WriteExamples/WriteShards']"),
     "no space left on device"),
    # HDF5's own words for a full disk while Keras saves weights.
    (OSError("Unable to synchronously create file (file write failed: time = Wed, errno = 28, error message = 'x')"),
     "no space left on device"),
])
def test_the_cause_is_found_in_every_shape(error, cause):
    assert storage.storage_cause(error) == cause


def test_a_wrapped_cause_is_found_and_other_errors_pass_unchanged(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise ValueError("while writing") from inner
    except ValueError as outer:
        assert storage.storage_cause(outer) == "no space left on device"
    with pytest.raises(storage.StorageError, match=r"^cannot write --output /x: read-only file system$"):
        with storage.storage_errors_in_one_line("/x", "--output"):
            raise OSError(errno.EROFS, "Read-only file system")
    with pytest.raises(KeyError):
        with storage.storage_errors_in_one_line("/x", "--output"):
            raise KeyError("not a storage fault")


def test_write_whole_leaves_the_old_file_when_the_new_one_fails(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    storage.write_whole(str(path), '{"old": 1}')
    real_replace = os.replace

    def failing_replace(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        storage.write_whole(str(path), '{"new": 2}')
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_text() == '{"old": 1}' and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_read_only_mount_and_a_full_one_are_seen_before_writing(tmp_path):
    with mounted_tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        problem = storage.writable_problem(str(read_only / "job"), "--job-dir")
        assert problem == f"cannot write --job-dir {read_only / 'job'}: read-only file system"
    with mounted_tmpfs(tmp_path / "small", "1m") as small:
        assert storage.writable_problem(str(small / "job"), "--job-dir") is None
        assert list((small / "job").iterdir()) == []  # the probe is gone
        assert storage.space_problem(str(small / "job" / "x"), 10 * 2**20, "the export").startswith(
            f"cannot write the export {small / 'job' / 'x'}: not enough free space (")
        assert storage.space_problem(str(small / "job"), 4096, "the export") is None
