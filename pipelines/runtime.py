"""What every Beam entry point of this package does the same way."""
import argparse
import difflib
import os
import sys

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from pipelines.sources import header_problem

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


def unknown_option(beam_args: list[str], ours: argparse.ArgumentParser) -> str | None:
    """The first argument that neither our parser nor any Beam options class
    takes, said with the closest known flag. Beam itself only logs a warning
    and runs with its defaults, so a typo such as --vocab_sise would go unseen."""
    parser = _BeamArgumentParser(allow_abbrev=False)  # how PipelineOptions.get_all_options parses
    for options_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        options_class._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(beam_args)
    if not unknown:
        return None
    name = unknown[0].split("=", 1)[0]
    if not name.startswith("-"):
        return f"unexpected argument {name!r}"
    known = [flag for p in (parser, ours) for action in p._actions for flag in action.option_strings]
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown option {name}" + (f" (did you mean {close[0]}?)" if close else "")


def beam_args_or_exit(prog: str, beam_args: list[str], ours: argparse.ArgumentParser) -> list[str]:
    """The Beam arguments with the local runner chosen, or a one-line error (exit 2) for an unknown one."""
    problem = unknown_option(beam_args, ours)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return with_local_runner(beam_args)


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
