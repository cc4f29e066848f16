"""Beam's local job service, with this package's data-stream workaround.

    python -m pipelines.job_service --port 8099 [--port-file FILE]

It speaks the Job API that Flink's and Spark's job servers speak, and runs each
job it is sent on its own FnApiRunner, in this process: a workaround set by the
process that submits the job does not reach it, so this one sets it itself
(pipelines.runtime.size_only_data_streams). With SDK workers from Beam's worker
pool, a pipeline then runs as it would on a portable runner:

    python -m apache_beam.runners.worker.worker_pool_main --service_port 50000 &
    python -m pipelines.job_service --port 8099 &
    python -m pipelines.preprocess --input ... --output ... --runner PortableRunner \\
        --job_endpoint localhost:8099 --environment_type EXTERNAL --environment_config localhost:50000

SIGTERM or Ctrl-C stops it (exit 0). `local_portable_services()` starts both
as above, on free ports, for a test or a benchmark.
"""
import argparse
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Iterator

from apache_beam.runners.portability import local_job_service

from pipelines import PipelineError
from pipelines.runtime import size_only_data_streams
from reviews import logs
from reviews.errors import one_line_errors

LOG = logging.getLogger(__name__)


def parsed_args(argv=None) -> argparse.Namespace:
    parser = logs.OneLineParser(name="job_service", prog="python -m pipelines.job_service",
                                description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8099, help="the Job API's port on all interfaces (0: any free port)")
    parser.add_argument("--port-file", default=None, help="write the port here once the service listens")
    parser.add_argument("--staging-dir", default=None, help="where submitted artifacts are staged (default: a temp dir)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0 to 65535, got {args.port}")
    return args


@contextlib.contextmanager
def stop_requested():
    """An event that SIGTERM (what Kubernetes and a test send) and SIGINT set; the
    handlers they had before come back afterwards."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@one_line_errors("job_service")
def main(argv=None) -> int:
    args = parsed_args(argv)
    logs.configure(args.verbose)
    size_only_data_streams()  # before the servicer builds a runner
    servicer = local_job_service.LocalJobServicer(args.staging_dir)
    try:
        port = servicer.start_grpc_server(args.port)
    except RuntimeError as error:  # grpc's "Failed to bind"
        raise PipelineError(f"cannot listen on port {args.port}: {error}") from None
    try:
        with stop_requested() as stop:
            if args.port_file:
                with open(args.port_file + ".tmp", "w") as handle:
                    handle.write(str(port))
                os.replace(args.port_file + ".tmp", args.port_file)  # whole or absent, for a reader that polls
            print(f"job_service: listening for Beam jobs on localhost:{port}", flush=True)
            while not stop.wait(1):
                pass
    finally:
        servicer.stop()
    return 0


@dataclasses.dataclass
class PortableServices:
    job_endpoint: str
    pool_endpoint: str
    job_service: subprocess.Popen
    worker_pool: subprocess.Popen

    def beam_args(self) -> list[str]:
        """The standard Beam options that send a pipeline to these services."""
        return ["--runner", "PortableRunner", "--job_endpoint", self.job_endpoint,
                "--environment_type", "EXTERNAL", "--environment_config", self.pool_endpoint]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PipelineError(f"{' '.join(process.args)} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=1):
            return
        time.sleep(0.2)
    raise PipelineError(f"{' '.join(process.args)} did not listen on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def local_portable_services(log: IO | int = subprocess.DEVNULL) -> Iterator[PortableServices]:
    """Beam's worker pool and this job service, each a process of its own on a free port
    (their output to `log`: the pool pipes its workers' output and never reads it, so a
    pipe would fill); both get SIGTERM on the way out."""
    job_port, pool_port = free_port(), free_port()
    # The pool starts each SDK worker as `python -c ...`, found on PATH: this interpreter.
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    commands = {pool_port: [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                            "--service_port", str(pool_port)],
                job_port: [sys.executable, "-m", "pipelines.job_service", "--port", str(job_port)]}
    processes = {}
    try:
        for port, command in commands.items():
            processes[port] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        for port, process in processes.items():
            wait_listening(port, process)
        yield PortableServices(f"localhost:{job_port}", f"localhost:{pool_port}", processes[job_port], processes[pool_port])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.exit(main())
