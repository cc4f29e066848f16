"""Where preprocessing's time and memory go, stage by stage.

    python benchmarks/preprocess_stages.py [--rows 568454] [--input Reviews.csv] [--workers N]

Runs `pipelines.preprocess` in memory (FnApiRunner) in this process and times
each bundle the runner executes, naming its fused stage by the pipeline's
transforms in it, with the process's resident memory after it. With
`--workers N` the stages run in N worker processes (multi_processing) and the
runner here still times each one: a stage that takes as long with 2 workers as
with 1 is one the second worker cannot help with. Start-up
(imports) and graph construction (tf.Transform traces its graph there) are
reported apart. Prints a table; writes benchmarks/results/preprocess_stages.json
(preprocess_stages_<rows>.json for another --rows, ..._<N>_processes.json with --workers).
"""
import argparse
import re
import resource
import shutil
import sys
import time

STARTED = time.perf_counter()

from common import WORK, default_input, resampled_csv, write_result  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def short_name(stage_name: str) -> str:
    """The user-level transform names of a fused stage (its first few)."""
    names = []
    for part in re.findall(r"ref_AppliedPTransform_([A-Za-z0-9_\[\]\-]+?)(?:-|_)\d+|([A-Z][A-Za-z]+\[[a-z]+\])", stage_name):
        name = next(p for p in part if p)
        name = name.split("_")[0]
        if name not in names:
            names.append(name)
    return "+".join(names) or stage_name[:60]


# What a fused stage does, by the first transform in it (in pipeline order).
KINDS = (
    ("ReadReviews", "read CSV (Arrow), validate, label, dedup keys"),
    ("NotebookRules-FindDuplicates", "dedup: find the duplicates in each key bucket"),
    ("NotebookRules-DropDuplicates", "drop duplicates and unhelpful, split, raw features; tf.Transform analysis graph over train"),
    ("Transform-", "tf.Transform graph over all splits; no-words drop, statistics, tf.Example encoding, gzip"),
    ("Analyze", "tf.Transform analysis: vocabulary merge, top-k, transform graph written"),
    ("Write", "TFRecord shards written"),
)


def kind_of(stage: str) -> str:
    return next((kind for prefix, kind in KINDS if stage.startswith(prefix)), "other stages (small, fixed cost)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=568_454)
    parser.add_argument("--input", default=None)
    parser.add_argument("--workers", type=int, default=0, help="worker processes (multi_processing); 0: in memory")
    args = parser.parse_args()
    source = default_input() if args.input is None else __import__("pathlib").Path(args.input)
    csv_path = resampled_csv(source, args.rows)

    imported = time.perf_counter()
    import apache_beam as beam  # noqa: F401
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    from pipelines import preprocess
    imports = time.perf_counter() - imported

    stages = []
    execute = fn_runner.FnApiRunner._execute_bundle

    def timed_bundle(self, context, manager, bundle_input):
        started = time.perf_counter()
        result = execute(self, context, manager, bundle_input)
        stages.append({"stage": short_name(manager.stage.name), "seconds": time.perf_counter() - started, "rss_mb": rss_mb()})
        return result

    fn_runner.FnApiRunner._execute_bundle = timed_bundle
    built = {}
    build = preprocess.build_pipeline

    def timed_build(*a, **k):
        started = time.perf_counter()
        build(*a, **k)
        built["seconds"] = time.perf_counter() - started

    preprocess.build_pipeline = timed_build
    out = WORK / "stages_out"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    beam_args = ["--runner=FnApiRunner"] + (
        [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"] if args.workers else [])
    preprocess.run(preprocess.PreprocessConfig(input=str(csv_path), output=str(out)), beam_args)
    total = time.perf_counter() - started

    merged = {}
    for stage in stages:
        entry = merged.setdefault(stage["stage"], {"stage": stage["stage"], "seconds": 0.0, "bundles": 0, "rss_mb": 0.0})
        entry["seconds"] += stage["seconds"]
        entry["bundles"] += 1
        entry["rss_mb"] = max(entry["rss_mb"], stage["rss_mb"])
    ranked = sorted(merged.values(), key=lambda s: -s["seconds"])
    in_stages = sum(s["seconds"] for s in stages)
    where = f"{args.workers} worker process(es)" if args.workers else "in memory"
    print(f"{args.rows:,} rows resampled from {source.name}, {where}: imports {imports:.1f} s (process start to here "
          f"{imported - STARTED + imports:.1f} s), graph {built['seconds']:.1f} s, run {total:.1f} s "
          f"({in_stages:.1f} s in {len(stages)} bundles), peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MB")
    kinds = {}
    for stage in stages:
        entry = kinds.setdefault(kind_of(stage["stage"]), {"seconds": 0.0, "bundles": 0})
        entry["seconds"] += stage["seconds"]
        entry["bundles"] += 1
    for kind, entry in sorted(kinds.items(), key=lambda item: -item[1]["seconds"]):
        print(f"  {entry['seconds']:6.2f} s  {entry['bundles']:3d} stage(s)  {kind}")
    print("  the largest stages:")
    for stage in ranked[:8]:
        print(f"  {stage['seconds']:6.2f} s  {stage['rss_mb']:7,.0f} MB  {stage['stage'][:150]}")
    name = ("preprocess_stages" if args.rows == 568_454 else f"preprocess_stages_{args.rows}") + (
        f"_{args.workers}_processes" if args.workers else "")
    path = write_result(name, {"rows": args.rows, "source": source.name, "workers": args.workers, "imports_seconds": imports,
                               "graph_seconds": built["seconds"], "run_seconds": total,
                               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
                               "kinds": kinds, "stages": ranked, "bundles": stages})
    print(f"wrote {path}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
