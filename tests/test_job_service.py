"""Beam's portable runner: preprocess sent to `pipelines.job_service` with SDK workers
from Beam's worker pool, processes of their own that share no memory with the
submitter, gives the in-memory run's examples."""
import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from pipelines import job_service, preprocess
from reviews.contract import SPLITS
from tests.conftest import FIXTURE_CSV, REPO, run_main, run_module
from tests.test_preprocess import read_split

PIPELINE_ARGS = ["--max-length", "12", "--num-shards", "2", "--test-fraction", "0.25", "--val-fraction", "0.25"]


@pytest.fixture(scope="module")
def portable_services(tmp_path_factory):
    """Beam's worker pool and our job service, running for the module."""
    with open(tmp_path_factory.mktemp("services") / "services.log", "w") as log, \
            job_service.local_portable_services(log) as services:
        yield services


@pytest.fixture(scope="module")
def in_memory_out(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("in_memory") / "out"
    assert preprocess.main(["--input", str(FIXTURE_CSV), "--output", str(out), *PIPELINE_ARGS]) == 0
    return out


def examples(out: pathlib.Path) -> dict:
    return {split: sorted((int(r["review_id"]), int(r["label"]), r["tokens"].tolist()) for r in read_split(out, split))
            for split in SPLITS}


@pytest.mark.slow
def test_the_portable_runner_gives_the_in_memory_examples(portable_services, in_memory_out, tmp_path):
    out = tmp_path / "portable"
    result = run_module("pipelines.preprocess", "--input", str(FIXTURE_CSV), "--output", str(out), *PIPELINE_ARGS,
                        *portable_services.beam_args())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["balanced"] is True
    assert report == json.loads((in_memory_out / "report.json").read_text())
    assert examples(out) == examples(in_memory_out)
    assert portable_services.job_service.poll() is None  # it serves the next job too


def test_the_job_service_stops_on_sigterm_with_status_0(tmp_path):
    port_file = tmp_path / "port"
    process = subprocess.Popen([sys.executable, "-m", "pipelines.job_service", "--port", "0", "--port-file", str(port_file)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not port_file.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    port = int(port_file.read_text())
    job_service.wait_listening(port, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.strip().splitlines() == [f"job_service: listening for Beam jobs on localhost:{port}"]


def test_the_job_service_sets_size_only_streams_before_it_builds_its_runner(monkeypatch):
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    seen = []

    class Servicer:  # records what a runner it built would read, then fails to bind as grpc does
        def __init__(self, staging_dir):
            seen.append(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)

        def start_grpc_server(self, port):
            raise RuntimeError(f"Failed to bind to address [::]:{port}")

        def stop(self):
            seen.append("stopped")

    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1000)  # Beam's default
    monkeypatch.setattr(local_job_service, "LocalJobServicer", Servicer)
    result = run_main("pipelines.job_service", "--port", "8099")
    assert result.returncode == 2 and seen == [0]
    assert result.stderr.strip() == "job_service: error: cannot listen on port 8099: Failed to bind to address [::]:8099"


def test_a_bad_port_is_a_one_line_error():
    result = run_main("pipelines.job_service", "--port", "70000")
    assert result.returncode == 2 and result.stderr.strip() == "job_service: error: --port must be 0 to 65535, got 70000"
