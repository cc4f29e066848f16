"""Beam 2.77's timed-stream loss made likely, with and without our workaround.

    python benchmarks/timed_streams.py [--rows 100000] [--runs 3] [--modes multi_processing multi_threading]

Each run is `pipelines.preprocess` with 2 workers in a process of its own, where
the runner's timed streams flush every --flush-ms (Beam: 1000) and every message
queued for sending waits --send-delay-ms first (as a full send queue makes the
flush callback wait). Without the workaround the flush that sends a copy of the
buffer and then clears it drops what the writer appended meanwhile: the ledger
does not balance, or a cut element fails to decode. With it the same stress
gives balanced runs. The cause and the workaround: docs/beam_timed_streams.md.
Writes benchmarks/results/timed_streams.json.
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import time

from common import SHARED_SAMPLE, WORK, default_input, measured_command, resampled_csv, write_result


def stressed(flush_ms: int, send_delay_ms: int, workaround: bool) -> None:
    """This process's Beam: short flush timers, a delay before each send, and our workaround kept or not."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers
    from apache_beam.runners.worker import data_plane

    from pipelines import runtime

    queued = data_plane._GrpcDataChannel._enqueue_to_send

    def delayed(self, *args, **kwargs):
        time.sleep(send_delay_ms / 1000)
        return queued(self, *args, **kwargs)

    data_plane._GrpcDataChannel._enqueue_to_send = delayed
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = flush_ms  # the workaround, when kept, sets it back to 0
    if not workaround:
        runtime.size_only_data_streams = lambda: None


def one_run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as python -m pipelines.preprocess starts
    stressed(args.flush_ms, args.send_delay_ms, not args.without_workaround)
    from pipelines import preprocess

    return preprocess.main(["--input", args.input, "--output", args.output, "--overwrite",
                            "--direct_num_workers", "2", "--direct_running_mode", args.mode])


def run_outcome(command: list[str], output: pathlib.Path) -> dict:
    """What one stressed run did: its exit status, time and peak memory, and the ledger's figures
    when it wrote a report."""
    measured = measured_command(command, check=False)
    outcome = {"exit_status": measured["exit_status"], "seconds": round(measured["seconds"], 1),
               "tree_rss_mb": round(measured["tree_rss_mb"])}
    report = output / "report.json"
    if report.exists():
        ledger = json.loads(report.read_text())
        outcome.update(balanced=ledger["balanced"], rows_read=ledger["rows_read"], fates_total=ledger["fates_total"],
                       examples=sum(ledger["examples"].values()))
    lines = [line for line in measured["stderr_tail"].splitlines() if line.strip()]
    if outcome["exit_status"] != 0 and lines:
        outcome["last_error_line"] = lines[-1][:300]
    outcome["lost"] = outcome["exit_status"] != 0 or not outcome.get("balanced", False)
    return outcome


def stress(input_csv: pathlib.Path, mode: str, workaround: bool, runs: int, args: argparse.Namespace,
           stop_at_first_loss: bool = False) -> list[dict]:
    outcomes = []
    for run in range(runs):
        output = WORK / "timed_streams" / f"{mode}_{'with' if workaround else 'without'}_{run}"
        shutil.rmtree(output, ignore_errors=True)
        command = [sys.executable, __file__, "--one-run", "--input", str(input_csv), "--output", str(output),
                   "--mode", mode, "--flush-ms", str(args.flush_ms), "--send-delay-ms", str(args.send_delay_ms)]
        outcome = run_outcome(command + ([] if workaround else ["--without-workaround"]), output)
        outcomes.append(outcome)
        print(f"{mode:16} {'with' if workaround else 'without':7} run {run + 1}: "
              f"{'LOST ROWS' if outcome['lost'] else 'balanced'} ({outcome['seconds']} s) "
              f"{outcome.get('last_error_line', '')}", flush=True)
        if stop_at_first_loss and outcome["lost"]:
            break
    return outcomes


def runs_lost(results: dict) -> dict:
    """{mode: {"without"/"with": {"runs": n, "runs_lost": k}}}: the figures the benchmarks table shows."""
    return {mode: {kept: {"runs": len(outcomes), "runs_lost": sum(o["lost"] for o in outcomes)}
                   for kept, outcomes in by_kept.items()} for mode, by_kept in results.items()}


def parsed_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=None, help="a CSV (default: the real sample resampled to --rows)")
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["multi_processing", "multi_threading"])
    parser.add_argument("--flush-ms", type=int, default=5)
    parser.add_argument("--send-delay-ms", type=int, default=20)
    parser.add_argument("--stop-at-first-loss", action="store_true",
                        help="without the workaround, stop a mode's runs once one has lost rows")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    parser.add_argument("--output-name", default="timed_streams", help="benchmarks/results/NAME.json")
    # One stressed run, in a process of its own (what the loop above starts):
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--without-workaround", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parsed_args(argv)
    if args.one_run:
        return one_run(args)
    input_csv = pathlib.Path(args.input) if args.input else (
        resampled_csv(SHARED_SAMPLE, args.rows) if SHARED_SAMPLE.exists() else default_input())
    results = {mode: {kept: stress(input_csv, mode, kept == "with", args.runs, args,
                                   stop_at_first_loss=args.stop_at_first_loss and kept == "without")
                      for kept in ("without", "with")} for mode in args.modes}
    summary = runs_lost(results)
    print(json.dumps(summary, indent=2))
    print("OUTCOMES " + json.dumps(results))  # one line, for a test to read
    if not args.no_write:
        path = write_result(args.output_name, {
            "input": input_csv.name, "flush_ms": args.flush_ms, "send_delay_ms": args.send_delay_ms,
            "runs": args.runs, "summary": summary, "outcomes": results})
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
