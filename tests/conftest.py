"""Shared fixtures: small real-shaped inputs, one preprocessed dataset and one
trained job per session, so each expensive stage runs once."""
import os
import pathlib
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURE_CSV = REPO / "tests" / "fixtures" / "reviews.csv"
SHARED_SAMPLE = REPO.parent / "shared" / "data" / "Reviews_sample.csv"

# tests/fixtures/reviews.csv, row by row (see the file): what each stage must do.
FIXTURE_ROWS = 25
FIXTURE_REJECTED = {"column_count": 1, "not_an_integer": 1, "out_of_range": 1, "empty_text": 1, "undecodable_text": 1}
FIXTURE_NEUTRAL, FIXTURE_DUPLICATES, FIXTURE_UNHELPFUL = 1, 1, 1
FIXTURE_KEPT = 25 - 5 - 1 - 1 - 1

# Small but real-shaped: fewer ids and a shorter sequence keep CPU training quick.
TINY_VOCAB, TINY_LENGTH = 600, 48


def run_module(module: str, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python -m module` as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def shared_sample() -> pathlib.Path:
    if not SHARED_SAMPLE.exists():
        pytest.skip(f"{SHARED_SAMPLE} is absent")
    return SHARED_SAMPLE


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
