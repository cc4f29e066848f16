"""What every Beam entry point of this package does the same way."""
import os

from apache_beam.io.filesystems import FileSystems

# Beam 2.77's default DirectRunner first tries to download the Prism runner;
# FnApiRunner runs locally with nothing to fetch (in one or several processes).
LOCAL_RUNNER = "FnApiRunner"


def with_local_runner(beam_args: list[str]) -> list[str]:
    if any(arg.startswith("--runner") for arg in beam_args):
        return beam_args
    return [f"--runner={LOCAL_RUNNER}", *beam_args]


def unmatched_pattern(patterns: str) -> str | None:
    """The first of the comma-separated patterns that matches no file, if any."""
    for pattern in (p.strip() for p in patterns.split(",")):
        if not FileSystems.match([pattern])[0].metadata_list:
            return pattern
    return None


def matched_files(patterns: str) -> list[str]:
    """Every file the comma-separated patterns match."""
    return [m.path for p in patterns.split(",") if p.strip() for m in FileSystems.match([p.strip()])[0].metadata_list]


def is_within(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or lies below it (local paths resolved, gs:// compared as written)."""
    if "://" not in path and "://" not in directory:
        path, directory = os.path.realpath(path), os.path.realpath(directory)
    path, directory = path.rstrip("/"), directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")
