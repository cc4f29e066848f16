"""What every Beam entry point of this package does the same way."""
import argparse
import difflib
import re
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser
from apache_beam.runners.portability.fn_api_runner import worker_handlers


# Beam 2.77's default DirectRunner first tries to download the Prism runner;
# FnApiRunner runs locally with nothing to fetch (in one or several processes).
LOCAL_RUNNER = "FnApiRunner"


def with_local_runner(beam_args: list[str]) -> list[str]:
    if any(arg.startswith("--runner") for arg in beam_args):
        return beam_args
    return [f"--runner={LOCAL_RUNNER}", *beam_args]


# Beam 2.77's timed data streams lose elements (docs/beam_timed_streams.md):
# data_plane.TimeBasedBufferingClosableOutputStream's background thread calls
# flush(), which sends a copy of the buffer and then clears it, and nothing stops
# the writing thread from appending between the two, so those bytes are dropped.
# The FnApiRunner's data server, and multi_threading's in-process workers, use
# timed streams (worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 1000); size-only
# streams flush only from the writing thread. Remove when
# tests/test_runtime.py's strict xfail starts passing on a new Beam.
TIMED_STREAM_EXPERIMENT = re.compile(r"data_buffer_time_limit_ms=(?P<ms>.*)")


def size_only_data_streams() -> None:
    """Every local runner this process builds flushes its data streams by size only.
    Read when the runner builds its data server and its in-process workers, so it
    must run before the pipeline does (subprocess workers are size-only already)."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def beam_options_parser() -> _BeamArgumentParser:
    """Every Beam option, parsed as PipelineOptions.get_all_options does. Parsed here,
    not by building PipelineOptions, whose constructor calls logging.basicConfig()
    and so would set the log format before reviews.logs.configure does."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    for options_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        options_class._add_argparse_args(parser)
    return parser


def new_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """Every pipeline of this package is made here, so that it has size-only data
    streams also where a caller runs preprocess.run or score.run without the command line."""
    size_only_data_streams()
    return beam.Pipeline(options=PipelineOptions(beam_args))


def timed_stream_problem(beam_args: list[str]) -> str | None:
    """The experiment that would turn the lossy timed streams back on in Beam's SDK workers."""
    experiments = beam_options_parser().parse_known_args(beam_args)[0].experiments or []
    for experiment in experiments:
        match = TIMED_STREAM_EXPERIMENT.fullmatch(experiment)
        if match and not re.fullmatch(r"0+|-[0-9]+", match["ms"].strip()):  # Beam reads 0 or less as off
            return (f"--experiments {experiment} turns on Beam's timed data streams, which lose rows on "
                    "Beam 2.77 (docs/beam_timed_streams.md): leave it out")
    return None


def unknown_option(beam_args: list[str], ours: argparse.ArgumentParser) -> str | None:
    """The first argument that neither our parser nor any Beam options class
    takes, said with the closest known flag. Beam itself only logs a warning
    and runs with its defaults, so a typo such as --vocab_sise would go unseen."""
    parser = beam_options_parser()
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
    """The Beam arguments with the local runner chosen, or a one-line error (exit 2) for an
    unknown one or for the experiment that turns timed data streams back on."""
    problem = unknown_option(beam_args, ours) or timed_stream_problem(beam_args)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return with_local_runner(beam_args)


