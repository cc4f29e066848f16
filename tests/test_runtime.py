"""The data-stream workaround for Beam 2.77's timed streams (docs/beam_timed_streams.md):
the bug itself, pinned as a strict xfail; the guard that no pipeline of ours builds a
timed stream; the refusal of the experiment that would turn them back on."""
import json
import os
import subprocess
import sys
import threading

import pandas as pd
import pytest
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import data_plane

from pipelines import runtime
from tests.conftest import FIXTURE_CSV, FIXTURE_REJECTED, FIXTURE_ROWS, REPO, assert_one_line_error, latest_export, run_main


@pytest.mark.xfail(strict=True, reason="Beam 2.77: TimeBasedBufferingClosableOutputStream.flush clears bytes "
                                       "appended while its callback runs; when this passes, drop the workaround")
def test_a_timed_stream_delivers_every_byte_written_while_it_flushes():
    sent, entered, release = [], threading.Event(), threading.Event()

    def send(data: bytes) -> None:  # as the data channel's send queue does when it is full
        sent.append(data)
        entered.set()
        release.wait(10)

    # A timer too long to fire: the test calls flush itself, as the periodic thread would.
    stream = data_plane.TimeBasedBufferingClosableOutputStream(
        close_callback=sent.append, flush_callback=send, time_flush_threshold_ms=3_600_000)
    stream.write(b"first element,")
    flusher = threading.Thread(target=stream.flush)
    flusher.start()
    assert entered.wait(10)
    stream.write(b"second element,")  # the writing thread goes on while the flush sends
    release.set()
    flusher.join(10)
    stream.close()
    assert b"".join(sent) == b"first element,second element,"


def test_a_size_only_stream_delivers_every_byte_it_was_given():
    # What every stream is once the workaround is set: nothing flushes but the writer.
    runtime.size_only_data_streams()
    sent = []
    stream = data_plane.ClosableOutputStream.create(sent.append, sent.append, worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
    assert not isinstance(stream, data_plane.TimeBasedBufferingClosableOutputStream)
    for i in range(1000):
        stream.write(b"element %d," % i)
        stream.maybe_flush()
    stream.close()
    assert b"".join(sent) == b"".join(b"element %d," % i for i in range(1000))


@pytest.mark.parametrize("module", ["pipelines.preprocess", "pipelines.score"])
@pytest.mark.parametrize("experiment", ["data_buffer_time_limit_ms=5", "upload_graph,data_buffer_time_limit_ms=1000"])
def test_the_timed_stream_experiment_is_a_one_line_error(module, experiment, tmp_path):
    args = ["--input", str(FIXTURE_CSV), "--output", str(tmp_path / "out"), f"--experiments={experiment}"]
    if module == "pipelines.score":
        args += ["--model", str(tmp_path / "no-export")]
    result = run_main(module, *args)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, module.split(".")[1], "data_buffer_time_limit_ms", "lose rows", "leave it out")


@pytest.mark.parametrize("experiment", ["data_buffer_time_limit_ms=0", "data_buffer_time_limit_ms=-1", "upload_graph"])
def test_experiments_that_keep_streams_size_only_are_accepted(experiment):
    assert runtime.timed_stream_problem([f"--experiments={experiment}"]) is None


def test_every_pipeline_made_here_has_size_only_streams(monkeypatch):
    # preprocess.run and score.run make their pipeline here: a caller that skips the
    # command line (benchmarks/preprocess_stages.py, a notebook) gets the workaround too.
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1000)  # Beam's default
    pipeline = runtime.new_pipeline(["--runner=FnApiRunner", "--direct_num_workers=2"])
    assert worker_handlers.DATA_BUFFER_TIME_LIMIT_MS == 0
    assert pipeline.options.get_all_options()["direct_num_workers"] == 2


def test_checking_beam_arguments_leaves_the_log_format_to_our_cli():
    # Building PipelineOptions calls logging.basicConfig(): every CLI line would then read
    # "INFO:__main__:..." (a fresh interpreter: pytest gives the root logger handlers of its own).
    code = ("import argparse, logging; from pipelines import runtime; "
            "runtime.beam_args_or_exit('x', ['--experiments=upload_graph', '--direct_num_workers=2'], "
            "argparse.ArgumentParser()); print(len(logging.getLogger().handlers))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["0"]


# A sitecustomize module on PYTHONPATH runs in every Python process started with
# it, the runner's worker subprocesses included: it logs each timed stream built.
COUNTING_SITECUSTOMIZE = """
import os
from apache_beam.runners.worker import data_plane

_built = data_plane.TimeBasedBufferingClosableOutputStream.__init__

def _counted(self, *args, **kwargs):
    with open(os.environ["TIMED_STREAM_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    _built(self, *args, **kwargs)

data_plane.TimeBasedBufferingClosableOutputStream.__init__ = _counted
"""

# Beam alone, as a user would write it: the counter must see its timed streams,
# or a count of zero would prove nothing.
PLAIN_BEAM_PIPELINE = """
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
options = PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
with beam.Pipeline(options=options) as p:
    _ = p | beam.Create(range(1000)) | beam.Reshuffle() | beam.Map(lambda x: x * 2)
"""


@pytest.fixture
def counted_streams(tmp_path):
    """(environment, log path): processes run with the environment log every timed stream they build."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(COUNTING_SITECUSTOMIZE)
    log = tmp_path / "timed_streams.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TIMED_STREAM_LOG": str(log)}
    return env, log


def streams_built(log) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.slow
def test_the_counter_sees_the_timed_streams_of_a_plain_beam_pipeline(counted_streams):
    env, log = counted_streams
    result = subprocess.run([sys.executable, "-c", PLAIN_BEAM_PIPELINE], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert streams_built(log) > 0


@pytest.mark.slow
def test_two_worker_processes_of_preprocess_and_score_build_no_timed_stream_and_balance(counted_streams, tmp_path,
                                                                                      trained_job):
    env, log = counted_streams
    workers = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    prep = subprocess.run([sys.executable, "-m", "pipelines.preprocess", "--input", str(FIXTURE_CSV),
                           "--output", str(tmp_path / "prep"), "--max-length", "12", "--num-shards", "2", *workers],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert prep.returncode == 0, prep.stderr[-3000:]
    assert json.loads((tmp_path / "prep" / "report.json").read_text())["balanced"] is True
    score = subprocess.run([sys.executable, "-m", "pipelines.score", "--input", str(FIXTURE_CSV), "--model",
                            latest_export(trained_job), "--output", str(tmp_path / "scores"), *workers],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert score.returncode == 0, score.stderr[-3000:]
    scored = sum(len(pd.read_csv(f)) for f in tmp_path.glob("scores-0*.csv"))
    rejected = sum(len(f.read_text().splitlines()) for f in tmp_path.glob("scores-rejected-*.jsonl"))
    assert scored + rejected == FIXTURE_ROWS and rejected == sum(FIXTURE_REJECTED.values())
    assert streams_built(log) == 0


@pytest.mark.slow
def test_under_stress_runs_lose_rows_without_the_workaround_and_none_with_it(shared_sample):
    # benchmarks/timed_streams.py: 5 ms flushes and a 20 ms wait before each send make the race likely
    # once a stage's input takes longer to write than a flush interval (100,000 rows; 5,000 are too few).
    result = subprocess.run([sys.executable, "benchmarks/timed_streams.py", "--rows", "100000", "--runs", "2",
                             "--modes", "multi_processing", "--stop-at-first-loss", "--no-write"],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.split("OUTCOMES ", 1)[1])["multi_processing"]
    assert any(o["lost"] for o in outcomes["without"]), outcomes["without"]
    assert len(outcomes["with"]) == 2 and not any(o["lost"] for o in outcomes["with"]), outcomes["with"]
    assert {(o["rows_read"], o["fates_total"]) for o in outcomes["with"]} == {(100000, 100000)}
    assert len({o["examples"] for o in outcomes["with"]}) == 1  # the same input gives the same examples
