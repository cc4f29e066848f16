"""Training throughput.

    python benchmarks/train.py [--part input|streaming|bucketing|all] [--rows 100000] [--epochs 3]

input      the tf.data input pipeline alone (examples/s), fixed length and bucketed
streaming  lstm1 training examples/s streaming from TFRecords vs the notebook's way
           (the same examples as in-memory numpy arrays through model.fit)
bucketing  lstm1 via trainer.task, fixed 400 vs --bucket-by-length, --seeds runs each:
           examples/s, validation and test accuracy, test AUC (mean and spread), on
           the real 5,000-row sample and on a resampled --rows copy (speed only:
           its copies repeat texts across splits)

Targets: streaming >= 0.95x in-memory; input pipeline >= 20x the training step
rate; bucketed >= 3x fixed examples/s with validation accuracy within 0.5 points.
Writes benchmarks/results/train.json.
"""
import argparse
import json
import shutil
import time

from common import WORK, default_input, mean_and_spread, python, resampled_csv, timed_command, write_result

BATCH = 2048


def prepared(csv_path, name: str):
    out = WORK / f"prep_{name}"
    if not (out / "report.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        timed_command([python(), "-m", "pipelines.preprocess", "--input", str(csv_path), "--output", str(out)])
    return out


def input_examples_per_second(spec, bucket_by_length: bool, batches: int = 40) -> float:
    from trainer import data

    stream = iter(data.dataset(spec, "train", BATCH, shuffle=True, repeat=True, seed=1, bucket_by_length=bucket_by_length))
    next(stream)  # warm up the interleave and the shuffle buffer
    started, examples = time.perf_counter(), 0
    for _ in range(batches):
        tokens, _ = next(stream)
        examples += int(tokens.shape[0])
    return examples / (time.perf_counter() - started)


def fit_examples_per_second(spec, x, steps: int) -> float:
    """Examples/s of lstm1's fit over `steps` steps, after a warm-up step (tracing)."""
    import keras

    from trainer import models

    keras.utils.set_random_seed(7)
    model = models.compiled(models.build_lstm1(spec.vocab_size), 1e-3)
    if isinstance(x, tuple):  # in memory: the notebook's model.fit(x_train, y_train, batch_size=2048)
        features, labels = x
        model.fit(features[:BATCH], labels[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
        started = time.perf_counter()
        model.fit(features[: steps * BATCH], labels[: steps * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    else:
        model.fit(x, steps_per_epoch=1, epochs=1, verbose=0)
        started = time.perf_counter()
        model.fit(x, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * BATCH / (time.perf_counter() - started)


def in_memory_arrays(spec):
    import numpy as np

    from trainer import data

    tokens, labels = [], []
    for t, y in data.dataset(spec, "train", BATCH):
        tokens.append(t.numpy())
        labels.append(y.numpy())
    return np.concatenate(tokens), np.concatenate(labels)


def part_input_and_streaming(prep_dir, steps: int) -> dict:
    from trainer import data

    spec = data.data_spec(str(prep_dir))
    result = {
        "input_fixed_examples_per_second": input_examples_per_second(spec, False),
        "input_bucketed_examples_per_second": input_examples_per_second(spec, True),
    }
    features, labels = in_memory_arrays(spec)
    repeats = -(-steps * BATCH // len(labels)) + 1  # enough rows for the timed steps
    features, labels = features.repeat(repeats, axis=0)[: (steps + 1) * BATCH], labels.repeat(repeats)[: (steps + 1) * BATCH]
    streamed = data.dataset(spec, "train", BATCH, shuffle=True, repeat=True, seed=1)
    # Alternate the two ways and keep each one's best, so order and warm-up favour neither.
    rounds = [(fit_examples_per_second(spec, (features, labels), steps), fit_examples_per_second(spec, streamed, steps))
              for _ in range(2)]
    result["train_in_memory_examples_per_second"] = max(r[0] for r in rounds)
    result["train_streaming_examples_per_second"] = max(r[1] for r in rounds)
    result["streaming_vs_in_memory"] = result["train_streaming_examples_per_second"] / result["train_in_memory_examples_per_second"]
    result["input_vs_training"] = result["input_fixed_examples_per_second"] / result["train_streaming_examples_per_second"]
    return result


def trained(prep_dir, name: str, epochs: int, batch_size: int, bucketed: bool, seed: int) -> dict:
    job = WORK / f"job_{name}_{'bucketed' if bucketed else 'fixed'}_seed{seed}"
    timed_command([python(), "-m", "trainer.task", "--data", str(prep_dir), "--job-dir", str(job), "--overwrite",
                   "--epochs", str(epochs), "--batch-size", str(batch_size), "--seed", str(seed),
                   "--bucket-by-length" if bucketed else "--no-bucket-by-length"])
    metrics = json.loads((job / "metrics.json").read_text())
    return {"seed": seed, **{key: metrics[key] for key in (
        "examples_per_second", "seconds_per_epoch", "val_accuracy", "test_accuracy", "test_auc", "best_epoch")}}


def summary(runs: list[dict]) -> dict:
    return mean_and_spread(runs, ("examples_per_second", "seconds_per_epoch", "val_accuracy", "test_accuracy", "test_auc"))


def part_bucketing(datasets: dict, epochs: int, batch_size: int, seeds: int) -> dict:
    """Fixed 400 vs bucketed, `seeds` runs each, alternating so machine drift favours neither."""
    result = {}
    for name, prep_dir in datasets.items():
        runs = {"fixed": [], "bucketed": []}
        for seed in range(1, seeds + 1):
            for way in runs:
                runs[way].append(trained(prep_dir, name, epochs, batch_size, way == "bucketed", seed))
        fixed, bucketed = summary(runs["fixed"]), summary(runs["bucketed"])
        result[name] = {"epochs": epochs, "batch_size": batch_size, "seeds": seeds, "runs": runs, "fixed": fixed, "bucketed": bucketed,
                        "speedup": bucketed["examples_per_second"]["mean"] / fixed["examples_per_second"]["mean"],
                        "val_accuracy_points": 100 * (bucketed["val_accuracy"]["mean"] - fixed["val_accuracy"]["mean"])}
    return result


def figure(summary_of_way: dict, key: str, scale: float = 1.0, digits: int = 2) -> str:
    return f"{scale * summary_of_way[key]['mean']:.{digits}f} ± {scale * summary_of_way[key]['spread'] / 2:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("input", "streaming", "bucketing", "all"), default="all")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256, help="for the bucketing comparison")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps of 2048")
    parser.add_argument("--seeds", type=int, default=3, help="training runs per way in the bucketing comparison")
    parser.add_argument("--sets", nargs="+", choices=("sample", "resampled"), default=["sample", "resampled"],
                        help="data sets of the bucketing comparison (one re-run keeps the other's figures)")
    args = parser.parse_args()
    source = default_input()
    sample_dir = prepared(source, "sample")
    result = {"source": source.name}
    if args.part in ("input", "streaming", "all"):
        big_dir = prepared(resampled_csv(source, args.rows), f"x{args.rows}")
        result["streaming"] = part_input_and_streaming(big_dir, args.steps)
        for key, value in result["streaming"].items():
            print(f"  {key:40s} {value:10,.2f}")
    if args.part in ("bucketing", "all"):
        datasets = {"sample": sample_dir} if "sample" in args.sets else {}
        if "resampled" in args.sets:
            datasets[f"resampled_{args.rows}"] = prepared(resampled_csv(source, args.rows), f"x{args.rows}")
        result["bucketing"] = part_bucketing(datasets, args.epochs, args.batch_size, args.seeds)
        for name, row in result["bucketing"].items():
            for way in ("fixed", "bucketed"):
                print(f"  {name} {way:8s} {figure(row[way], 'examples_per_second', digits=0)} ex/s  "
                      f"val acc {figure(row[way], 'val_accuracy', 100)} %  test acc {figure(row[way], 'test_accuracy', 100)} %  "
                      f"test AUC {figure(row[way], 'test_auc', digits=4)}")
            print(f"  {name}: {row['speedup']:.2f}x, {row['val_accuracy_points']:+.2f} points (mean ± half the spread over {row['seeds']} seeds)")
    previous = WORK.parent / "results" / "train.json"
    if args.part != "all" and previous.exists():  # one part re-run: keep the other parts' figures
        kept = json.loads(previous.read_text())
        if "bucketing" in result:
            result["bucketing"] = {**kept.get("bucketing", {}), **result["bucketing"]}
        result = {**{k: v for k, v in kept.items() if k not in ("benchmark", "machine")}, **result}
    print(f"wrote {write_result('train', result)}")


if __name__ == "__main__":
    main()
