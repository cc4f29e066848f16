"""Shared fixtures: small real-shaped inputs, one preprocessed dataset and one
trained job per session, so each expensive stage runs once."""
import contextlib
import os
import pathlib
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURE_CSV = REPO / "tests" / "fixtures" / "reviews.csv"
# One-line posts that are not food reviews: the drift check must flag them.
SHORT_TEXTS_CSV = REPO / "tests" / "fixtures" / "short_texts.csv"
SHARED_SAMPLE = REPO.parent / "shared" / "data" / "Reviews_sample.csv"

# tests/fixtures/reviews.csv, row by row (see the file): what each stage must do.
FIXTURE_ROWS = 25
FIXTURE_REJECTED = {"column_count": 1, "not_an_integer": 1, "out_of_range": 1, "empty_text": 1, "undecodable_text": 1}
FIXTURE_NEUTRAL, FIXTURE_DUPLICATES, FIXTURE_UNHELPFUL = 1, 1, 1
FIXTURE_KEPT = 25 - 5 - 1 - 1 - 1

# Small but real-shaped: fewer ids and a shorter sequence keep CPU training quick.
TINY_VOCAB, TINY_LENGTH = 600, 48


def latest_export(job: pathlib.Path) -> str:
    """The newest export/<version>/ of a finished job (TF Serving's choice too)."""
    return str(max((job / "export").iterdir(), key=lambda p: int(p.name)))


def run_module(module: str, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python -m module` as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def run_main(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m module args` in this process: the module's `main(args)`, its exit
    status and what it printed. For checks of a command's result and its one-line
    errors, without a new interpreter (and TensorFlow's import) each time; what only
    a process shows (start-up notices, the exit path, signals) uses run_module."""
    import importlib
    import io

    main = importlib.import_module(module if module != "deploy.workflow" else "deploy.workflow.__main__").main
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main(list(args))
            except SystemExit as exit:  # argparse's usage errors
                status = exit.code if isinstance(exit.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess([module, *args], status, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def mounted_tmpfs(path, size: str, read_only: bool = False):
    """A small tmpfs at `path` (tests run as root); skips where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    except OSError as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


LOCK_HOLDER = """
import sys
from reviews.locks import exclusive_writer
with exclusive_writer(sys.argv[1], "test holder"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills us)
"""


@contextlib.contextmanager
def lock_holder(directory):
    """Another process that holds `directory`'s writer lock for the block (no TensorFlow: it starts in a blink)."""
    process = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(directory)], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


RACER = """
import importlib, os, pathlib, sys, time
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
barrier, name, module, *argv = sys.argv[1:]
main = importlib.import_module(module).main  # the imports before the barrier: they take seconds
pathlib.Path(barrier, name).touch()
deadline = time.time() + 300
while len(os.listdir(barrier)) < int(os.environ["RACERS"]) and time.time() < deadline:
    time.sleep(0.005)
status = main(argv)
sys.stdout.flush(); sys.stderr.flush()
os._exit(status)
"""


def raced(barrier: pathlib.Path, *commands: tuple[str, ...], timeout: int = 600) -> list[subprocess.CompletedProcess]:
    """Runs each (module, *args) in a process of its own, their `main(args)` started
    at the same moment (after each has done its imports), and waits for all."""
    barrier.mkdir(parents=True)
    env = {**os.environ, "RACERS": str(len(commands))}
    processes = [subprocess.Popen([sys.executable, "-c", RACER, str(barrier), str(i), *command], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, command in enumerate(commands)]
    results = []
    for process, command in zip(processes, commands):
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    for process, result in zip(processes, results):
        result.pid = process.pid
    return results


def assert_one_line_error(stderr: str, prefix: str, *fragments: str) -> None:
    """The last line of stderr is our one-line error with these fragments, and no traceback came before it."""
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prefix}: error: ") and all(f in last for f in fragments), stderr


@pytest.fixture(scope="session")
def shared_sample() -> pathlib.Path:
    if not SHARED_SAMPLE.exists():
        pytest.skip(f"{SHARED_SAMPLE} is absent")
    return SHARED_SAMPLE


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory, shared_sample) -> pathlib.Path:
    """pipelines.preprocess output for the real 5,000-row sample, default settings."""
    from pipelines import preprocess

    out = tmp_path_factory.mktemp("prepared_sample") / "out"
    assert preprocess.main(["--input", str(shared_sample), "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def sample_job(tmp_path_factory, prepared_sample, shared_sample) -> pathlib.Path:
    """tfidf, the strongest model on real reviews, trained briefly on the real
    sample, with the review texts for its evaluation report."""
    from trainer import task

    job = tmp_path_factory.mktemp("sample_job") / "tfidf"
    assert task.main(["--data", str(prepared_sample), "--job-dir", str(job), "--model", "tfidf", "--epochs", "5",
                      "--raw-input", str(shared_sample)]) == 0
    return job


def scored_alone_and_among_long_reviews(score, texts: list[str], long_texts: list[str]) -> tuple:
    """(each text scored alone, the same texts scored in one request between long
    reviews, in reverse order): `score` maps a list of texts to probabilities.
    A model whose output depends only on the review gives the same three times."""
    import numpy as np

    alone = np.array([score([text])[0] for text in texts], np.float64)
    request = long_texts[:1] + texts + long_texts[1:]
    among_long = np.asarray(score(request), np.float64)[1:1 + len(texts)]
    reversed_request = np.asarray(score(texts[::-1] + long_texts), np.float64)[:len(texts)][::-1]
    return alone, among_long, reversed_request


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> pathlib.Path:
    from pipelines import sample

    path = tmp_path_factory.mktemp("synthetic") / "reviews.csv"
    sample.write_sample(sample.SampleConfig(rows=3000, output=str(path), seed=11))
    return path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, synthetic_csv) -> pathlib.Path:
    """pipelines.preprocess output for 3,000 synthetic rows."""
    from pipelines import preprocess

    out = tmp_path_factory.mktemp("prepared") / "out"
    status = preprocess.main([
        "--input", str(synthetic_csv), "--output", str(out), "--vocab-size", str(TINY_VOCAB),
        "--max-length", str(TINY_LENGTH), "--num-shards", "4",
    ])
    assert status == 0
    return out


@pytest.fixture(scope="session")
def trained_job(tmp_path_factory, prepared) -> pathlib.Path:
    """A finished trainer.task run on `prepared`: 2 short epochs at fixed length
    (the bucketed default has its own job in test_task.py)."""
    from trainer import task

    job = tmp_path_factory.mktemp("job") / "lstm1"
    status = task.main([
        "--data", str(prepared), "--job-dir", str(job), "--epochs", "2", "--batch-size", "64",
        "--steps-per-epoch", "6", "--learning-rate", "0.01", "--no-bucket-by-length",
    ])
    assert status == 0
    return job


@contextlib.contextmanager
def serving_at(**options):
    """deploy.serving.server in this process, on a free port of 127.0.0.1, for the
    block; yields the server (its address: server.server_address)."""
    import threading

    from deploy.serving import server

    httpd = server.server(server.ServerOptions(port=0, **options))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.stop()


def http_json(httpd_or_port, method: str, path: str, payload=None, body: bytes | None = None,
              timeout: float = 60) -> tuple[int, dict]:
    """One request on a connection of its own: (status, the JSON answered)."""
    import http.client
    import json

    port = httpd_or_port if isinstance(httpd_or_port, int) else httpd_or_port.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if body is not None else (None if payload is None else json.dumps(payload).encode())
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read() or b"null")
    finally:
        connection.close()


def concurrently(function, arguments: list) -> list:
    """function(argument) for each argument, all started at once; results (or the exception raised) in order."""
    import threading

    barrier = threading.Barrier(len(arguments))
    results = [None] * len(arguments)

    def call(i):
        barrier.wait()
        try:
            results[i] = function(arguments[i])
        except Exception as error:  # noqa: BLE001
            results[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(arguments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results
