"""Preprocessing throughput: the Beam pipeline vs the notebook's approach.

    python benchmarks/preprocess.py [--rows 100000] [--input Reviews.csv]

Both handle the same resampled rows end to end (read, clean, dedup, split,
vocabulary, ids, padding, write). Both are timed as a user runs them, a fresh
process each, imports included: the pipeline in memory and with 2 worker
processes, the notebook's cells (pandas, Python regex cleaning, a Keras
Tokenizer, pad_sequences, one process) as a script. The notebook's cells alone,
without start-up, are reported too. Prints rows/s and ratios; writes
benchmarks/results/preprocess.json.
"""
import argparse
import math
import re
import shutil
import time

from common import WORK, default_input, python, resampled_csv, timed_command, write_result

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


def pipeline_seconds(csv_path, *beam_args: str) -> float:
    out = WORK / "pipeline_out"
    shutil.rmtree(out, ignore_errors=True)
    return timed_command([python(), "-m", "pipelines.preprocess", "--input", str(csv_path), "--output", str(out), *beam_args])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--input", default=None, help="a Reviews.csv (default: ../shared/data sample, else synthetic)")
    parser.add_argument("--notebook-only", metavar="CSV", help=argparse.SUPPRESS)  # the timed notebook process
    args = parser.parse_args()
    if args.notebook_only:
        print(notebook_seconds(args.notebook_only))
        return
    source = default_input() if args.input is None else __import__("pathlib").Path(args.input)
    csv_path = resampled_csv(source, args.rows)

    seconds = {
        "notebook_cells_only": notebook_seconds(csv_path),
        "notebook": timed_command([python(), __file__, "--notebook-only", str(csv_path)]),
        "pipeline_in_memory": pipeline_seconds(csv_path),
        "pipeline_2_processes": pipeline_seconds(csv_path, "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"),
    }
    rows_per_second = {name: args.rows / value for name, value in seconds.items()}
    ratios = {
        "pipeline_vs_notebook": rows_per_second["pipeline_in_memory"] / rows_per_second["notebook"],
        "two_processes_vs_one": rows_per_second["pipeline_2_processes"] / rows_per_second["pipeline_in_memory"],
    }
    print(f"{args.rows:,} rows resampled from {source.name}")
    for name, value in seconds.items():
        print(f"  {name:22s} {value:7.1f} s  {rows_per_second[name]:9,.0f} rows/s")
    print("  targets: pipeline >= 1.0x notebook (floor 0.5x), 2 processes >= 1.7x one")
    for name, value in ratios.items():
        print(f"  {name:22s} {value:.2f}x")
    path = write_result("preprocess", {"rows": args.rows, "source": source.name, "seconds": seconds,
                                       "rows_per_second": rows_per_second, "ratios": ratios})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
