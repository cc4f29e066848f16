"""What every Beam entry point of this package does the same way."""
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
