"""Load test of the serving server over loopback: what a client of the HTTP
endpoint sees under concurrency.

    python benchmarks/serve_http.py [--model EXPORT] [--seconds 10] [--client wrk|python]

Starts `python -m deploy.serving.server --model EXPORT` as a process of its
own, then for 1, 4, 16 and 64 connections and 1 and 64 real reviews a request
(texts of the real sample, or the synthetic demo data when it is absent) runs
a bounded load (--seconds each, at most --max-requests) and records
requests/s, reviews/s, p50/p99 latency, errors (non-200 answers and socket
errors) and the CPU the client itself took (it shares the 2 cores). The
server's RSS (/proc) is read idle before the load, right after it, and 10 s
after it; a last phase sends large requests (5,000 reviews each) to
see that memory returns. The client is wrk (Debian's package) when it is on
PATH, else keep-alive http.client connections in separate processes.

Targets on 2 cores: with 16 connections at least 3x the requests/s of one
connection and p99 <= 100 ms; zero errors; RSS back within 10 % of idle.
Writes benchmarks/results/serve_http.json.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from common import REPO, default_input, write_result
from serve import newest_export

CONNECTIONS = (1, 4, 16, 64)
REVIEWS_PER_REQUEST = (1, 64)


def review_texts() -> list[str]:
    import pandas as pd

    return pd.read_csv(default_input(), dtype=str, keep_default_na=False, on_bad_lines="skip")["Text"].tolist()


def bodies(texts: list[str], per_request: int, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps({"instances": rng.sample(texts, per_request)}).encode() for _ in range(count)]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024


def started_server(export: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    (REPO / "benchmarks" / "work").mkdir(exist_ok=True)
    log = open(REPO / "benchmarks" / "work" / "serve_http_server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "deploy.serving.server", "--model", export, "--port", "0", *extra],
                               cwd=REPO, stderr=subprocess.PIPE, stdout=log, text=True)
    for line in process.stderr:
        log.write(line)
        if line.startswith("serving ") and " on " in line:
            port = int(line.rsplit(":", 1)[1])
            break
    else:
        raise SystemExit(f"the server did not start: see {log.name}")
    threading.Thread(target=lambda: [log.write(line) for line in process.stderr], daemon=True).start()
    return process, port


# ---------------------------------------------------------------- the clients

def python_worker(port: int, connections: int, payloads: list[bytes], deadline: float, budget: int, out) -> None:
    latencies, errors, lock = [], [0], threading.Lock()
    sent = [0]

    def run(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= budget:
                    return
                sent[0] += 1
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=rng.choice(payloads),
                                   headers={"Content-Type": "application/json"})
                reply = connection.getresponse()
                reply.read()
                ok = reply.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, errors[0]))


def python_load(port: int, connections: int, payloads: list[bytes], seconds: float, max_requests: int) -> dict:
    processes = min(connections, 4)
    queue = multiprocessing.Queue()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    deadline = started + seconds
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    workers = [multiprocessing.Process(target=python_worker, args=(port, share, payloads, deadline,
                                                                  max_requests // processes, queue)) for share in shares]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    latencies = np.array([x for r in results for x in r[0]]) * 1000
    return {"requests": int(len(latencies)), "errors": int(sum(r[1] for r in results)), "seconds": wall,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "client_cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


WRK_SCRIPT = """
bodies = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[(counter %% #bodies) + 1])
end
"""


def lua_string(body: bytes) -> str:
    return '"' + body.decode().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def wrk_time(text: str) -> float:
    """wrk's '1.23ms' / '450.00us' / '1.02s' in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk_load(port: int, connections: int, payloads: list[bytes], seconds: float, max_requests: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(lua_string(p) for p in payloads))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds:g}s",
                             "--timeout", "60s", "--latency", "-s", script.name, f"http://127.0.0.1:{port}"],
                            capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(script.name)
    out = result.stdout
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": requests, "seconds": seconds,
            "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
            "p50_ms": wrk_time(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
            "p99_ms": wrk_time(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
            "client_cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "requests_per_second_wrk": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="an export (default: the newest under demo/ or benchmarks/work/)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--server-args", default="", help="more flags for the server, as one string")
    args = parser.parse_args()
    export = args.model or newest_export()
    texts = review_texts()
    process, port = started_server(export, args.server_args.split())
    load = wrk_load if args.client == "wrk" else python_load
    runs = []
    try:
        warm = bodies(texts, 64, 20, seed=99)
        python_load(port, 2, warm, 3, 200)  # warm-up: tracing of the request shapes, thread pools
        time.sleep(2)
        idle_mb = rss_mb(process.pid)
        for per_request in REVIEWS_PER_REQUEST:
            payloads = bodies(texts, per_request, 200, seed=per_request)
            for connections in CONNECTIONS:
                before = server_cpu_seconds(process.pid)
                run = load(port, connections, payloads, args.seconds, args.max_requests)
                run.update(connections=connections, reviews_per_request=per_request,
                           server_cpu_seconds=server_cpu_seconds(process.pid) - before)
                run["requests_per_second"] = run["requests"] / run["seconds"]
                run["reviews_per_second"] = run["requests_per_second"] * per_request
                runs.append(run)
                print(f"{connections:3d} connections, {per_request:2d} reviews a request: {run['requests_per_second']:8,.0f} "
                      f"requests/s {run['reviews_per_second']:9,.0f} reviews/s  p50 {run['p50_ms']:6.1f} ms  "
                      f"p99 {run['p99_ms']:6.1f} ms  errors {run['errors']}  client CPU {run['client_cpu_seconds']:.1f} s  "
                      f"server CPU {run['server_cpu_seconds']:.1f} s", flush=True)
        after_load_mb = rss_mb(process.pid)
        time.sleep(10)
        settled_mb = rss_mb(process.pid)
        # Large requests, one after another: 5,000 reviews each (a few MB, under the default body limit).
        large = bodies(texts, 5_000, 3, seed=7)
        large_run = python_load(port, 1, large, 60, 6)
        peak_large_mb = rss_mb(process.pid)
        time.sleep(10)
        after_large_mb = rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        exit_status = process.wait(timeout=120)

    by = {(r["connections"], r["reviews_per_request"]): r for r in runs}
    speedup = by[(16, 1)]["requests_per_second"] / by[(1, 1)]["requests_per_second"]
    memory = {"idle_mb": idle_mb, "right_after_load_mb": after_load_mb, "10s_after_load_mb": settled_mb,
              "large_request_bytes": len(large[0]), "large_requests": large_run["requests"],
              "large_errors": large_run["errors"], "right_after_large_mb": peak_large_mb,
              "10s_after_large_mb": after_large_mb}
    result = {"export": os.path.relpath(export, REPO), "client": args.client, "seconds_per_run": args.seconds,
              "server_args": args.server_args, "runs": runs, "memory": memory, "sigterm_exit_status": exit_status,
              "targets": {"16_vs_1_connection_requests_per_second": speedup, "p99_ms_16_connections": by[(16, 1)]["p99_ms"],
                          "errors": sum(r["errors"] for r in runs) + large_run["errors"],
                          "rss_after_vs_idle": settled_mb / idle_mb, "rss_after_large_vs_idle": after_large_mb / idle_mb}}
    print(f"16 vs 1 connection: {speedup:.2f}x requests/s (target >= 3x); p99 at 16: {by[(16, 1)]['p99_ms']:.1f} ms "
          f"(target <= 100); errors {result['targets']['errors']} (target 0)")
    print(f"RSS idle {idle_mb:.0f} MB, right after {after_load_mb:.0f}, 10 s after {settled_mb:.0f} "
          f"({settled_mb / idle_mb:.2f}x); large requests ({len(large[0]) / 2**20:.1f} MB): {peak_large_mb:.0f} MB, "
          f"10 s after {after_large_mb:.0f} MB ({after_large_mb / idle_mb:.2f}x); target within 1.10x")
    print(f"wrote {write_result('serve_http', result)}")


def server_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
