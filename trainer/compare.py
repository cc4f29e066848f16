"""The notebook's conclusion table, from finished jobs of any model.

    python -m trainer.compare JOB1 JOB2 ...   → Markdown on stdout
"""
import os
import sys

if __name__ == "__main__":  # before TensorFlow loads: its start-up notices are not our output
    from pipelines.logs import quiet_start

    quiet_start()

from pipelines import logs  # noqa: E402
from trainer.artifacts import read_json  # noqa: E402

COLUMNS = (
    ("model", "model", "{}"),
    ("layers", "architecture", "{}"),
    ("train loss", "train_loss", "{:.4f}"),
    ("val loss", "val_loss", "{:.4f}"),
    ("test loss", "test_loss", "{:.4f}"),
    ("test accuracy", "test_accuracy", "{:.2%}"),
    ("test AUC", "test_auc", "{:.4f}"),
    # Accuracy mostly reflects the class balance; the minority class's F1 does not.
    ("F1 negative", "test_f1_negative", "{:.4f}"),
    ("macro-F1", "test_macro_f1", "{:.4f}"),
    ("params", "params", "{:,}"),
    ("s / epoch", "seconds_per_epoch", "{:.1f}"),
)


def table_row(metrics: dict) -> str:
    cells = [fmt.format(metrics[key]) if metrics.get(key) is not None else "–" for _, key, fmt in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def comparison_table(job_dirs: list[str]) -> str:
    lines = ["| " + " | ".join(title for title, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for job_dir in job_dirs:
        metrics = read_json(os.path.join(job_dir, "metrics.json"))
        if metrics is None:
            raise FileNotFoundError(f"{job_dir} has no metrics.json (not a finished trainer.task run)")
        lines.append(table_row(metrics))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = logs.OneLineParser(name="compare", prog="python -m trainer.compare", description=__doc__.split("\n")[0])
    parser.add_argument("jobs", nargs="+", help="trainer.task --job-dir folders")
    args = parser.parse_args(argv)
    try:
        print(comparison_table(args.jobs))
    except FileNotFoundError as error:
        print(f"compare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
