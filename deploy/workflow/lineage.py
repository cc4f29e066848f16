"""lineage.json: which data and code made each artifact of a workflow run.

For every step: its inputs and outputs, each with its size and a content
digest (a file's SHA-256; a folder's over its files' relative paths and
digests) or, for TFRecords, the record count of every split counted by reading
them; the package version and git commit; the step's full options; start and
end times. A changed input changes its digest, and so every digest after it.
"""
import datetime
import hashlib
import importlib.metadata
import os
import pathlib
import subprocess

import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[2]
CHUNK = 1 << 20


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(folder: str) -> list[str]:
    return sorted(os.path.join(root, name) for root, _, names in tf.io.gfile.walk(folder) for name in names)


def described(path: str) -> dict:
    """A file or folder: its size and content digest."""
    if not tf.io.gfile.isdir(path):
        return {"path": path, "bytes": tf.io.gfile.stat(path).length, "sha256": file_sha256(path)}
    each = file_digests(path)
    size = sum(tf.io.gfile.stat(os.path.join(path, relative)).length for relative in each)
    return {"path": path, "files": len(each), "bytes": size, "sha256": folder_sha256(each), "file_sha256": each}


def file_digests(folder: str) -> dict[str, str]:
    """Each file's SHA-256 by its path relative to `folder`: what the push checks its copy against."""
    return {os.path.relpath(file, folder): file_sha256(file) for file in files_under(folder)}


def folder_sha256(digests: dict[str, str]) -> str:
    """One digest over a folder's relative paths and their files' digests."""
    digest = hashlib.sha256()
    for relative, file_digest in sorted(digests.items()):
        digest.update(f"{relative}\0{file_digest}\n".encode())
    return digest.hexdigest()


def example_digest(record: bytes) -> bytes:
    """A tf.Example's digest from its content: protobuf writes a map's entries
    (the features) in no fixed order, so equal examples can differ in bytes."""
    return hashlib.sha256(tf.train.Example.FromString(record).SerializeToString(deterministic=True)).digest()


def split_records(prep_dir: str, split: str) -> tuple[int, str]:
    """(records, digest) of a split, by reading every record: the digest is over
    the examples' own digests in sorted order, so it depends on what the split
    holds, not on how it was sharded, ordered or compressed."""
    files = sorted(tf.io.gfile.glob(os.path.join(prep_dir, split, "*.tfrecord.gz")))
    digests = sorted(example_digest(record) for record in
                     tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()) if files else []
    return len(digests), hashlib.sha256(b"".join(digests)).hexdigest()


def described_prep(prep_dir: str) -> dict:
    """A preprocessing output: records and an order-free digest per split, and
    digests of the vocabulary and report.json. (The saved transform graph's
    bytes differ from run to run, so the folder's own digest would too.)"""
    splits = {split: split_records(prep_dir, split) for split in ("train", "val", "test")}
    files = files_under(prep_dir)
    return {"path": prep_dir, "files": len(files), "bytes": sum(tf.io.gfile.stat(f).length for f in files),
            "records": {split: count for split, (count, _) in splits.items()},
            "examples_sha256": {split: digest for split, (_, digest) in splits.items()},
            "vocabulary_sha256": file_sha256(os.path.join(prep_dir, "transform_fn", "assets", "words")),
            "report_sha256": file_sha256(os.path.join(prep_dir, "report.json"))}


def code_version() -> dict:
    try:
        version = importlib.metadata.version("review-sentiment")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit = dirty = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10,
                                check=True).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed package, a container): the version says what ran
    return {"package": "review-sentiment", "version": version, "git_commit": commit, "git_dirty": dirty}
