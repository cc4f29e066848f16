"""What every Beam entry point of this package does the same way."""
import argparse
import difflib
import sys

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser


# Beam 2.77's default DirectRunner first tries to download the Prism runner;
# FnApiRunner runs locally with nothing to fetch (in one or several processes).
LOCAL_RUNNER = "FnApiRunner"


def with_local_runner(beam_args: list[str]) -> list[str]:
    if any(arg.startswith("--runner") for arg in beam_args):
        return beam_args
    return [f"--runner={LOCAL_RUNNER}", *beam_args]


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


