"""Preprocessing throughput and memory: the Beam pipeline vs the notebook's approach.

    python benchmarks/preprocess.py [--rows 100000] [--input Reviews.csv] [--workers 2] [--repeats 2]
    python benchmarks/preprocess.py --rows 568454 --repeats 3    # the full dataset's size
    python benchmarks/preprocess.py --rows 568454 --repeats 3 --input ../shared/data/Reviews_extra.csv

Both handle the same resampled rows end to end (read, clean, dedup, split,
vocabulary, ids, padding, write). Both are timed as a user runs them, a fresh
process each, imports included: the notebook's cells (pandas, Python regex
cleaning, a Keras Tokenizer, pad_sequences, one process) as a script, and the
pipeline in memory, in one worker process and in --workers worker processes
(FnApiRunner multi_processing). The notebook's cells alone, without start-up,
are reported too. Runs alternate between the ways and each keeps its fastest
of --repeats, since a shared 2-core machine varies by ±1 s. Peak memory per
way: the process's maximum resident set (the kernel's maxrss) for one-process
runs, and for multi-process runs the largest sum of resident memory over the
run's processes, sampled every 0.1 s (both are recorded for every run; each
way reports the peak of its fastest run), and its CPU seconds over wall seconds
(cores busy). Prints rows/s, memory and ratios; writes
benchmarks/results/preprocess.json (preprocess_<rows>.json for another --rows,
with _<input's name> for another --input than the real sample).
"""
import argparse
import math
import re
import shutil
import time

from common import WORK, default_input, measured_command, python, resampled_csv, write_result

TAGS = re.compile(r"<[^>]*>")
ENTITIES = re.compile(r"&(?:[a-z]+|#[0-9]+);")
NON_LETTERS = re.compile(r"[^a-z]+")


def notebook_seconds(csv_path, vocab_size: int = 20000, max_length: int = 400) -> float:
    """The notebook's cells, timed from read_csv to the padded arrays."""
    import numpy as np
    import pandas as pd
    from tf_keras.preprocessing.sequence import pad_sequences
    from tf_keras.preprocessing.text import Tokenizer

    from pipelines.transform import STOPWORDS

    stopwords = set(STOPWORDS)
    started = time.perf_counter()
    df = pd.read_csv(csv_path)
    df = df[df["Score"] != 3].copy()
    df["label"] = (df["Score"] > 3).astype(int)
    df = df.sort_values("ProductId").drop_duplicates(subset=["UserId", "ProfileName", "Time", "Text"], keep="first")
    df = df[df["HelpfulnessNumerator"] <= df["HelpfulnessDenominator"]].sort_values("Time")

    def clean(text: str) -> str:
        text = NON_LETTERS.sub(" ", ENTITIES.sub(" ", TAGS.sub(" ", str(text).lower())))
        return " ".join(word for word in text.split() if word not in stopwords)

    df["clean"] = df["Text"].map(clean)
    n = len(df)
    train_val = math.floor(0.8 * n)
    train = math.floor(0.8 * train_val)
    tokenizer = Tokenizer(num_words=vocab_size)
    tokenizer.fit_on_texts(df["clean"].iloc[:train])
    sequences = tokenizer.texts_to_sequences(df["clean"])
    padded = pad_sequences(sequences, maxlen=max_length)
    splits = (padded[:train], padded[train:train_val], padded[train_val:])
    np.save(WORK / "notebook_train.npy", splits[0])
    return time.perf_counter() - started


def pipeline_run(csv_path, *beam_args: str) -> dict:
    out = WORK / "pipeline_out"
    shutil.rmtree(out, ignore_errors=True)
    return measured_command([python(), "-m", "pipelines.preprocess", "--input", str(csv_path), "--output", str(out), *beam_args])


def multi_processing(workers: int) -> tuple[str, ...]:
    return ("--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--input", default=None, help="a Reviews.csv (default: ../shared/data sample, else synthetic)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the multi-process run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way; the fastest counts")
    parser.add_argument("--in-memory-only", action="store_true",
                        help="only the notebook and the in-memory pipeline (the two the speed and memory targets compare)")
    parser.add_argument("--notebook-only", metavar="CSV", help=argparse.SUPPRESS)  # the timed notebook process
    args = parser.parse_args()
    if args.notebook_only:
        print(notebook_seconds(args.notebook_only))
        return
    source = default_input() if args.input is None else __import__("pathlib").Path(args.input)
    csv_path = resampled_csv(source, args.rows)

    many = f"pipeline_{args.workers}_processes"
    ways = {
        "notebook_cells_only": lambda: {"seconds": notebook_seconds(csv_path)},
        "notebook": lambda: measured_command([python(), __file__, "--notebook-only", str(csv_path)]),
        "pipeline_in_memory": lambda: pipeline_run(csv_path),
        "pipeline_1_process": lambda: pipeline_run(csv_path, *multi_processing(1)),
        many: lambda: pipeline_run(csv_path, *multi_processing(args.workers)),
    }
    one_process = ("notebook", "pipeline_in_memory")
    if args.in_memory_only:
        ways = {name: way for name, way in ways.items() if name in ("notebook_cells_only", *one_process)}
    runs = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            try:
                runs[name].append(way())
            except RuntimeError as error:  # recorded, and left out of the best of
                print(f"  {name}: a run failed: {error}")
                runs[name].append({"seconds": float("inf"), "failed": str(error)})
    fastest = {name: min(values, key=lambda run: run["seconds"]) for name, values in runs.items()}
    seconds = {name: run["seconds"] for name, run in fastest.items()}
    peak_memory_mb = {name: run["max_rss_mb"] if name in one_process else run["tree_rss_mb"]
                      for name, run in fastest.items() if "max_rss_mb" in run}
    rows_per_second = {name: args.rows / value for name, value in seconds.items()}
    # CPU seconds over wall seconds: how much of the machine a way used, so how much a second worker could add.
    cores_busy = {name: run["cpu_seconds"] / run["seconds"] for name, run in fastest.items() if "cpu_seconds" in run}
    ratios = {
        "pipeline_vs_notebook": rows_per_second["pipeline_in_memory"] / rows_per_second["notebook"],
        "pipeline_memory_vs_notebook": peak_memory_mb["pipeline_in_memory"] / peak_memory_mb["notebook"],
    }
    if many in ways:
        ratios[f"{args.workers}_processes_vs_in_memory"] = rows_per_second[many] / rows_per_second["pipeline_in_memory"]
        ratios[f"{args.workers}_processes_vs_1_process"] = rows_per_second[many] / rows_per_second["pipeline_1_process"]
    print(f"{args.rows:,} rows resampled from {source.name}, best of {args.repeats}")
    for name, value in seconds.items():
        memory = f"{peak_memory_mb[name]:7,.0f} MB" if name in peak_memory_mb else " " * 10
        memory += f"  {cores_busy[name]:.2f} cores busy" if name in cores_busy else ""
        each = ", ".join(f"{run['seconds']:.1f}" for run in runs[name])
        print(f"  {name:22s} {value:7.1f} s  {rows_per_second[name]:9,.0f} rows/s  {memory}   (runs: {each})")
    print(f"  targets: pipeline >= 1.0x notebook's rows/s at 568,454 rows (0.8x at 100,000), memory <= notebook's, "
          f"{args.workers} processes >= 1.3x one")
    for name, value in ratios.items():
        print(f"  {name:32s} {value:.2f}x")
    name = ("preprocess" if args.rows == 100_000 else f"preprocess_{args.rows}") + ("_in_memory" if args.in_memory_only else "")
    if source.name != "Reviews_sample.csv":  # another set's figures beside the sample's, not over them
        name += f"_{source.stem.lower()}"
    path = write_result(name, {"rows": args.rows, "source": source.name, "repeats": args.repeats,
                                       "workers": args.workers, "runs": runs, "seconds": seconds,
                                       "peak_memory_mb": peak_memory_mb, "rows_per_second": rows_per_second,
                                       "cores_busy": cores_busy,
                                       "ratios": ratios})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
