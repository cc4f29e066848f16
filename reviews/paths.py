"""Path checks every entry point makes before it starts: inputs that match no
file, outputs under a file, an output that would contain an input."""
import os

from apache_beam.io.filesystems import FileSystems

from reviews.records import header_problem


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


def input_problem(patterns: str, flag: str = "--input") -> str | None:
    """What stops these input patterns being read, said in one line, or None."""
    missing = unmatched_pattern(patterns)
    if missing:
        return f"no input file matches {missing!r}"
    inputs = matched_files(patterns)
    folder = next((path for path in inputs if "://" not in path and os.path.isdir(path)), None)
    if folder:
        return f"{flag} {folder!r} is a directory: give files or a glob, e.g. {folder.rstrip('/')}/*.csv"
    return next(filter(None, map(header_problem, inputs)), None)


def parents_and_self(path: str) -> list[str]:
    """path, its parent, ... up to the root (or the bucket of a gs:// path)."""
    chain = [path.rstrip("/") or "/"]
    while (parent := os.path.dirname(chain[-1])) not in ("", chain[-1]) and not parent.endswith(":"):
        chain.append(parent)
    return chain


def output_problem(path: str, flag: str) -> str | None:
    """An output directory (or file prefix) that cannot be written because it is, or lies under, a file."""
    for candidate in parents_and_self(path):
        if "://" not in candidate and os.path.isfile(candidate):
            return f"{flag} {path!r} cannot be written: {candidate!r} is a file"
    return None
