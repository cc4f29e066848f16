"""Path checks every entry point makes before it starts: inputs that match no
file, outputs under a file, an output that would contain an input.

Files are matched on tf.io.gfile (local paths, gs:// and the other file
systems TensorFlow knows) with Beam's pattern rules, so that a pattern the
checks accept is one Beam's `fileio.MatchAll` reads the same files for, and the
trainer matches them without importing Beam. TensorFlow is imported when a
file is touched, not before.
"""
import os
import posixpath
import re

from reviews.records import header_problem


def set_end(pattern: str, start: int) -> int:
    """Where the `[...]` set opened before `start` closes (-1: it does not, and `[`
    is a plain character); a `]` right after `[` or `[!` is a member, not the end."""
    if pattern[start:start + 1] == "!":
        start += 1
    if pattern[start:start + 1] == "]":
        start += 1
    return pattern.find("]", start)


def pattern_regex(pattern: str) -> re.Pattern:
    """Beam's file pattern syntax (FileSystem.translate_pattern): fnmatch's, but
    `*` stops at a slash and `**` does not."""
    parts, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            double = pattern[i:i + 1] == "*"
            i += double
            parts.append(".*" if double else r"[^/\\]*")
        elif c == "?":
            parts.append(".")
        elif c == "[" and (close := set_end(pattern, i)) != -1:
            inside = pattern[i:close].replace("\\", "\\\\")
            i = close + 1
            if inside.startswith("!"):
                inside = "^" + inside[1:]
            elif inside.startswith("^"):
                inside = "\\" + inside
            parts.append(f"[{inside}]")
        else:
            parts.append(re.escape(c))
    return re.compile(r"(?ms)" + "".join(parts) + r"\Z")


def files_matching(pattern: str) -> list[str]:
    """The files one pattern matches, as Beam's FileSystems.match finds them, on
    tf.io.gfile (local, gs:// and the other file systems TensorFlow knows): a
    pattern without wildcards names a file or directory that exists; one with
    them matches the whole path of every file below the directory before the
    first wildcard."""
    import tensorflow as tf

    if pattern.endswith("/"):
        pattern += "*"
    prefix = re.match(r"^[^[*?]*", pattern).group(0)
    if prefix == pattern:
        return [pattern] if tf.io.gfile.exists(pattern) else []
    folder = prefix if prefix.endswith("/") else posixpath.dirname(prefix)
    if not folder or not tf.io.gfile.isdir(folder):
        return []
    regex = pattern_regex(pattern)
    found = (posixpath.join(root, name) for root, _, names in tf.io.gfile.walk(folder) for name in names)
    return sorted(path for path in found if regex.match(path))


def matches_by_pattern(patterns: str) -> dict[str, list[str]]:
    """Each of the comma-separated patterns with the files it matches, in order (an
    empty one, as in "a.csv,", matches nothing)."""
    return {pattern: files_matching(pattern) if pattern else [] for pattern in (p.strip() for p in patterns.split(","))}


def matched_files(patterns: str) -> list[str]:
    """Every file the comma-separated patterns match."""
    return [path for files in matches_by_pattern(patterns).values() for path in files]


def is_within(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or lies below it (local paths resolved, gs:// compared as written)."""
    if "://" not in path and "://" not in directory:
        path, directory = os.path.realpath(path), os.path.realpath(directory)
    path, directory = path.rstrip("/"), directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")


def input_problem(patterns: str, flag: str = "--input") -> str | None:
    """What stops these input patterns being read, said in one line, or None."""
    matches = matches_by_pattern(patterns)  # each pattern listed once: on gs:// a listing is a request
    missing = next((pattern for pattern, files in matches.items() if not files), None)
    if missing:
        return f"no input file matches {missing!r}"
    inputs = [path for files in matches.values() for path in files]
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
