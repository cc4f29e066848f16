"""Helpers shared by the benchmark scripts: inputs, timing, results files."""
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED_SAMPLE = REPO.parent / "shared" / "data" / "Reviews_sample.csv"
RESULTS = REPO / "benchmarks" / "results"
WORK = REPO / "benchmarks" / "work"


def default_input() -> pathlib.Path:
    """The real 5,000-row sample when present, else the project's synthetic sample."""
    if SHARED_SAMPLE.exists():
        return SHARED_SAMPLE
    from pipelines import sample

    path = WORK / "synthetic_reviews.csv"
    if not path.exists():
        sample.write_sample(sample.SampleConfig(rows=20000, output=str(path)))
    return path


def resampled_csv(source: pathlib.Path, rows: int, seed: int = 0) -> pathlib.Path:
    """`rows` rows drawn with replacement, with fresh Ids and each copy's Time
    moved by whole days, so copies are distinct reviews to the dedup rule and the
    workload keeps the real length distribution."""
    import numpy as np
    import pandas as pd

    target = WORK / f"{source.stem}_x{rows}.csv"
    if target.exists():
        return target
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame = frame[frame["Time"].str.isdigit()]
    picked = frame.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    picked["Id"] = [str(i) for i in range(1, rows + 1)]
    picked["Time"] = (picked["Time"].astype(np.int64) + 86400 * np.arange(rows) // len(frame)).astype(str)
    WORK.mkdir(parents=True, exist_ok=True)
    picked.to_csv(target, index=False)
    return target


def timed_command(command: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_result(name: str, result: dict) -> pathlib.Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2))
    return path


def mean_and_spread(runs: list[dict], keys) -> dict:
    """Mean and spread (max - min) over seeds of each figure."""
    return {key: {"mean": statistics.fmean(r[key] for r in runs), "spread": max(r[key] for r in runs) - min(r[key] for r in runs)}
            for key in keys}


def python() -> str:
    return sys.executable
