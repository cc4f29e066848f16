"""The same examples whatever the runner: preprocess in memory, in 2 and 4 worker
processes, in 4 threads and on Beam's PortableRunner, run after run.

    python benchmarks/parallel.py [--rows 200000] [--runs 5] [--sets sample extra] [--modes ...]

Each set is --rows reviews resampled from a real file (the 5,000-row sample, and
Reviews_extra.csv: longer, more positive reviews). Every run must balance its
ledger and give the same order-free digest of its examples (split, review_id,
label, tokens) as the set's first in-memory run; a run that does not counts as
lost rows. PortableRunner runs go to `python -m pipelines.job_service` and Beam's
worker pool (`apache_beam.runners.worker.worker_pool_main`), both started here
in processes of their own (pipelines.job_service.local_portable_services). Writes benchmarks/results/parallel.json.
"""
import argparse
import contextlib
import hashlib
import json
import pathlib
import shutil

from common import SHARED_SAMPLE, WORK, measured_command, python, resampled_csv, write_result

from pipelines import job_service

SETS = {"sample": SHARED_SAMPLE, "extra": SHARED_SAMPLE.parent / "Reviews_extra.csv"}
MODES = {
    "in_memory": (),
    "2_processes": ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing"),
    "4_processes": ("--direct_num_workers", "4", "--direct_running_mode", "multi_processing"),
    "4_threads": ("--direct_num_workers", "4", "--direct_running_mode", "multi_threading"),
    "portable": None,  # the options of pipelines.job_service.local_portable_services()
}


def examples_digest(output_dir: pathlib.Path) -> tuple[str, int]:
    """(sha256 over the sorted per-example digests, examples): equal for equal
    example sets, whatever the shards' order or the order within them."""
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(str(output_dir)).transformed_feature_spec()
    digests = []
    for split in ("train", "val", "test"):
        files = sorted(tf.io.gfile.glob(str(output_dir / split / "*.tfrecord.gz")))
        batches = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096).map(lambda s: tf.io.parse_example(s, spec))
        for batch in batches.as_numpy_iterator():
            for review_id, label, tokens in zip(batch["review_id"], batch["label"], batch["tokens"]):
                key = f"{split}|{int(review_id)}|{int(label)}|".encode() + tokens.astype("<i8").tobytes()
                digests.append(hashlib.sha256(key).digest())
    return hashlib.sha256(b"".join(sorted(digests))).hexdigest(), len(digests)


def one_run(csv_path: pathlib.Path, beam_args: tuple[str, ...]) -> dict:
    out = WORK / "parallel_out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        measured = measured_command([python(), "-m", "pipelines.preprocess", "--input", str(csv_path), "--output",
                                     str(out), *beam_args])
    except RuntimeError as error:  # exit 1 (the ledger) or a crash
        measured = {"error": str(error).splitlines()[-1][:300]}
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    digest, examples = examples_digest(out) if report else (None, 0)
    return {**measured, "balanced": report.get("balanced"), "rows_read": report.get("rows_read"),
            "fates_total": report.get("fates_total"), "examples": examples, "digest": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--output-name", default="parallel")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results = {}
    modes = {mode: MODES[mode] for mode in args.modes}
    with contextlib.ExitStack() as stack:
        if "portable" in modes:
            log = stack.enter_context(open(WORK / "portable_services.log", "w"))
            modes["portable"] = tuple(stack.enter_context(job_service.local_portable_services(log)).beam_args())
        for name in args.sets:
            csv_path = resampled_csv(SETS[name], args.rows)
            reference = one_run(csv_path, MODES["in_memory"])
            print(f"{name}: in-memory reference: {reference['examples']:,} examples, digest {reference['digest'][:12]}", flush=True)
            runs = {mode: [] for mode in args.modes}
            for run in range(args.runs):  # the modes alternate, so a slow spell of the machine hits all of them
                for mode in args.modes:
                    outcome = one_run(csv_path, modes[mode])
                    outcome["same_examples"] = outcome["digest"] == reference["digest"]
                    outcome["lost_rows"] = (outcome["rows_read"] or 0) - (outcome["fates_total"] or 0)
                    runs[mode].append(outcome)
                    print(f"{name} {mode:12} run {run + 1}: {outcome.get('seconds', 0):6.1f} s, balanced {outcome['balanced']}, "
                          f"same examples {outcome['same_examples']} {outcome.get('error', '')}", flush=True)
            results[name] = {
                "input": csv_path.name, "rows": args.rows, "reference": reference,
                "modes": {mode: {
                    "runs": len(outcomes),
                    "runs_differing": sum(not o["same_examples"] or not o["balanced"] for o in outcomes),
                    "lost_rows": sum(o["lost_rows"] for o in outcomes),
                    "seconds_best": min(o.get("seconds", float("inf")) for o in outcomes),
                    "seconds_median": sorted(o.get("seconds", float("inf")) for o in outcomes)[len(outcomes) // 2],
                    "tree_rss_mb_max": max(o.get("tree_rss_mb", 0) for o in outcomes),
                    "outcomes": outcomes,
                } for mode, outcomes in runs.items()},
            }
    path = write_result(args.output_name, {"runs": args.runs, "sets": results})
    for name, result in results.items():
        for mode, figures in result["modes"].items():
            print(f"{name:7} {mode:12} {figures['runs']} runs, {figures['runs_differing']} differing, "
                  f"{figures['lost_rows']} rows lost, best {figures['seconds_best']:.1f} s, median {figures['seconds_median']:.1f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
