"""Helpers shared by the benchmark scripts: inputs, timing, results files."""
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import threading
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
    return measured_command(command, env)["seconds"]


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # it ended between two reads
    return total


def high_water_bytes(pid: int) -> int:
    """The process's peak resident set so far (VmHWM: it starts anew at exec,
    unlike getrusage's maxrss, which a child inherits from the parent it forked)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            line = next(line for line in handle if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return 0


def measured_command(command: list[str], env: dict | None = None, every: float = 0.1, check: bool = True) -> dict:
    """Wall seconds; CPU seconds, user and system, its waited-for children's
    included (cpu_seconds / seconds is how many cores it kept busy); the
    process's own peak resident set (its VmHWM, read every `every` seconds: it
    only grows) and the largest sum of resident memory over it and its child
    processes, sampled as often. A failed command raises RuntimeError, or with
    check=False is returned with its exit status and the last lines it wrote."""
    WORK.mkdir(parents=True, exist_ok=True)
    stderr = open(WORK / "last_command.stderr", "w+")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=stderr)
    peak_tree = peak_own = 0
    done = threading.Event()

    def sample():
        nonlocal peak_tree, peak_own
        while not done.wait(every):
            peak_tree = max(peak_tree, tree_rss_bytes(process.pid))
            peak_own = max(peak_own, high_water_bytes(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)  # its CPU time, with its children's that it waited for
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    stderr.seek(0)
    said = stderr.read()
    stderr.close()
    tail = "\n".join(said.strip().splitlines()[-5:])
    if process.returncode and check:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{tail}")
    measured = {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "max_rss_mb": peak_own / 2**20, "tree_rss_mb": peak_tree / 2**20}
    return measured if check else {**measured, "exit_status": process.returncode, "stderr_tail": tail}


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
