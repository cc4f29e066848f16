"""The project's Keras models on whatever Keras 3 backend is present: seconds per
epoch, and float32 vs bfloat16 on real reviews.

    KERAS_BACKEND=jax python benchmarks/gpu_keras.py --data .gpu/data --out $OUT/gpu.json     (the GPU machine)
    python benchmarks/gpu_keras.py --data DIR --steps 2 --accuracy-epochs 1 --out FILE         (a CPU smoke run)

Made for a GPU machine without TensorFlow (benchmarks/gpu_pack.py packs what
it needs): it imports only keras, numpy and trainer/models.py, the very builders
trainer.task trains.

Timing: epochs of --epoch-examples reviews (the notebook's 233,068) at batch
2048, token ids drawn at random with the real sample's review lengths. Fixed
batches are 400 wide; length-bucketed batches group reviews of similar length
and are padded to their bucket's upper edge (8, 16, ..., 256, 400), so a
compiling backend (XLA under JAX) sees a handful of shapes, not one per batch.
The second epoch is reported (the first includes compilation).

Accuracy: lstm1 (and, in float32, each model beyond the notebook's) trained on the real sample's train split (tokens exported from
pipelines.preprocess by gpu_pack.py) in float32 and in bfloat16 with the same
seed, evaluated on its validation split; and how much a review's probability
moves between a 400-wide batch and a small batch of similar reviews padded only
to their bucket's edge (padding neutrality; float32 on CPU moves <= 1e-5).

Runs go in order of importance and results are written after each one; the
script stops starting runs after --budget-seconds so one device command fits.
"""
import argparse
import dataclasses
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import keras  # noqa: E402

from trainer import models, recipes  # noqa: E402

BUCKET_EDGES = (8, 16, 32, 64, 128, 256)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    data: str
    out: str
    epoch_examples: int = 233_068
    batch_size: int = 2048
    vocab_size: int = 20_000
    sequence_length: int = 400
    steps: int | None = None  # per timed epoch; default: one epoch of epoch_examples
    accuracy_epochs: int = 3
    accuracy_batch_size: int = 256
    budget_seconds: float = 420.0
    seed: int = 7


def parsed_config(argv=None) -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder of .npy files written by benchmarks/gpu_pack.py")
    parser.add_argument("--out", required=True, help="results JSON, rewritten after every run")
    parser.add_argument("--epoch-examples", type=int, default=BenchConfig.epoch_examples)
    parser.add_argument("--batch-size", type=int, default=BenchConfig.batch_size)
    parser.add_argument("--steps", type=int, default=None, help="cap steps per timed epoch (smoke runs)")
    parser.add_argument("--accuracy-epochs", type=int, default=BenchConfig.accuracy_epochs)
    parser.add_argument("--budget-seconds", type=float, default=BenchConfig.budget_seconds,
                        help="start no new run after this many seconds")
    args = parser.parse_args(argv)
    return BenchConfig(data=args.data, out=args.out, epoch_examples=args.epoch_examples, batch_size=args.batch_size,
                       steps=args.steps, accuracy_epochs=args.accuracy_epochs, budget_seconds=args.budget_seconds)


def bucket_width(length: int, sequence_length: int) -> int:
    return next((edge for edge in BUCKET_EDGES if length <= edge and edge < sequence_length), sequence_length)


def front_padded(lengths: np.ndarray, width: int, vocab_size: int, rng) -> np.ndarray:
    tokens = rng.integers(1, vocab_size, size=(len(lengths), width), dtype=np.int64)
    tokens[np.arange(width)[None, :] < (width - np.minimum(lengths, width))[:, None]] = 0
    return tokens


def epoch_batches(config: BenchConfig, lengths: np.ndarray, bucketed: bool, rng) -> list[np.ndarray]:
    """One epoch's batches of token ids. A few distinct batches per shape are
    made and reused, so drawing random numbers does not slow the timed loop."""
    steps = config.steps or -(-config.epoch_examples // config.batch_size)
    drawn = rng.choice(lengths, size=steps * config.batch_size)
    if not bucketed:
        pool = [front_padded(drawn[i::4][:config.batch_size], config.sequence_length, config.vocab_size, rng) for i in range(4)]
        return [pool[i % 4] for i in range(steps)]
    widths = np.array([bucket_width(int(n), config.sequence_length) for n in np.sort(drawn)])
    schedule = [int(widths[i * config.batch_size:(i + 1) * config.batch_size].max()) for i in range(steps)]
    pool = {w: [front_padded(np.minimum(rng.choice(lengths, config.batch_size), w), w, config.vocab_size, rng) for _ in range(2)]
            for w in set(schedule)}
    return [pool[schedule[i]][k % 2] for k, i in enumerate(rng.permutation(steps))]


class EpochSeconds(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def lstm_implementation() -> str:
    """Which LSTM kernel this backend runs for a masked model, found by asking the
    backend's fused LSTM (cuDNN) and seeing whether it accepts the call."""
    from keras.src import backend

    units, width = 4, 3
    inputs = keras.ops.zeros((2, width, units))
    state = keras.ops.zeros((2, units))
    mask = keras.ops.convert_to_tensor(np.array([[True, True, False], [True, False, False]]))
    try:
        backend.lstm(inputs, state, state, mask, kernel=keras.ops.zeros((units, 4 * units)),
                     recurrent_kernel=keras.ops.zeros((units, 4 * units)), bias=keras.ops.zeros((4 * units,)),
                     activation=keras.activations.tanh, recurrent_activation=keras.activations.sigmoid)
        return "fused backend LSTM (cuDNN)"
    except NotImplementedError:
        return "generic Keras RNN loop (the backend's fused LSTM does not take this masked call here)"
    except Exception as error:  # noqa: BLE001 - a backend may fail differently; the name is what matters
        return f"generic Keras RNN loop (fused LSTM failed: {type(error).__name__})"


def built(name: str, dtype_policy: str, vocab_size: int, seed: int) -> keras.Model:
    keras.config.set_dtype_policy(dtype_policy)
    keras.utils.set_random_seed(seed)
    recipe = recipes.RECIPES[name]
    return models.compiled(models.BUILDERS[name](vocab_size), recipe.learning_rate, recipe.optimizer)


def timed_run(config: BenchConfig, lengths: np.ndarray, name: str, bucketed: bool, dtype_policy: str) -> dict:
    rng = np.random.default_rng(config.seed)
    batches = epoch_batches(config, lengths, bucketed, rng)
    labels = (rng.random(config.batch_size) < 0.84).astype("float32")
    model = built(name, dtype_policy, config.vocab_size, config.seed)

    def repeated():
        while True:
            for tokens in batches:
                yield tokens, labels[:len(tokens)]

    timer = EpochSeconds()
    model.fit(repeated(), steps_per_epoch=len(batches), epochs=2, verbose=0, callbacks=[timer])
    examples = len(batches) * config.batch_size
    return {"model": name, "batches": "bucketed" if bucketed else f"fixed {config.sequence_length}", "dtype_policy": dtype_policy,
            "params": model.count_params(), "steps_per_epoch": len(batches), "examples_per_epoch": examples,
            "seconds_epoch_1": timer.seconds[0], "seconds_epoch_2": timer.seconds[1],
            "examples_per_second": examples / timer.seconds[1],
            "seconds_per_233068": timer.seconds[1] * 233_068 / examples,
            "distinct_widths": len({t.shape[1] for t in batches})}


def auc_of(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC (no ties in float scores); trainer.evaluation has one too, but it imports TensorFlow."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy_run(config: BenchConfig, split: dict, name: str, dtype_policy: str) -> dict:
    model = built(name, dtype_policy, split["vocab_size"], config.seed)
    started = time.perf_counter()
    models.adapted(model, [split["train_tokens"]])  # tfidf's document frequencies; others unchanged
    model.fit(split["train_tokens"], split["train_labels"], batch_size=config.accuracy_batch_size,
              epochs=config.accuracy_epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - started
    val = split["val_tokens"]
    probabilities = np.asarray(model.predict(val, batch_size=512, verbose=0), np.float64).reshape(-1)
    # Padding neutrality: the first 64 validation reviews again, now in small
    # batches of similar length, each padded only to its bucket's edge (a few
    # shapes, so a compiling backend compiles a few times, not 64).
    first = val[:64]
    widths = np.array([bucket_width(int(n), val.shape[1]) for n in (first != 0).sum(axis=1)])
    regrouped = np.empty(len(first))
    for width in np.unique(widths):
        rows = np.flatnonzero(widths == width)
        regrouped[rows] = np.asarray(model.predict(first[rows][:, val.shape[1] - width:], verbose=0)).reshape(-1)
    labels = split["val_labels"]
    return {"model": name, "dtype_policy": dtype_policy, "epochs": config.accuracy_epochs,
            "train_examples": int(len(split["train_labels"])), "val_examples": int(len(labels)),
            "val_accuracy": float(np.mean((probabilities >= 0.5) == (labels == 1))), "val_auc": auc_of(labels, probabilities),
            "max_abs_diff_regrouped_vs_400": float(np.max(np.abs(regrouped - probabilities[:64]))),
            "train_seconds": seconds}


def real_split(data_dir: str) -> dict:
    folder = pathlib.Path(data_dir)
    split = {name: np.load(folder / f"{name}.npy") for name in ("train_tokens", "train_labels", "val_tokens", "val_labels")}
    split["vocab_size"] = int(json.loads((folder / "meta.json").read_text())["vocab_size"])
    return split


def environment() -> dict:
    info = {"keras": keras.__version__, "backend": keras.backend.backend(), "python": platform.python_version(),
            "lstm_implementation": lstm_implementation()}
    if info["backend"] == "jax":
        import jax

        info["devices"] = [str(d) for d in jax.devices()]
    elif info["backend"] == "torch":
        import torch

        info["devices"] = [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
    elif info["backend"] == "tensorflow":
        import tensorflow as tf

        info["devices"] = [d.name for d in tf.config.list_logical_devices()]
    return info


NEW_MODELS = ("bilstm", "fasttext", "tfidf")


def planned_runs() -> list[tuple]:
    """Most important first: the notebook's model as the notebook ran it; then
    the models beyond the notebook in float32, fixed and bucketed, and their
    accuracy on the real sample (each with its own recipe)."""
    runs = []
    for name in ("lstm1", "lstm2"):
        for dtype_policy in ("float32", "mixed_bfloat16"):
            for bucketed in (False, True):
                runs.append(("time", name, bucketed, dtype_policy))
        if name == "lstm1":
            runs += [("accuracy", "lstm1", None, "float32"), ("accuracy", "lstm1", None, "mixed_bfloat16")]
    for name in NEW_MODELS:
        runs += [("time", name, False, "float32"), ("time", name, True, "float32")]
    runs += [("accuracy", name, None, "float32") for name in NEW_MODELS]
    return runs


def written(path: str, result: dict, started: float) -> None:
    """After every run, so a command stopped at its limit still brings back what it measured."""
    result["elapsed_seconds"] = time.perf_counter() - started
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text(json.dumps(result, indent=2))


def main(argv=None) -> int:
    config = parsed_config(argv)
    started = time.perf_counter()
    lengths = np.load(pathlib.Path(config.data) / "train_lengths.npy")
    split = real_split(config.data)
    result = {"benchmark": "gpu_keras", "config": dataclasses.asdict(config), "environment": environment(),
              "timing": [], "accuracy": [], "skipped": []}
    print(json.dumps(result["environment"]), flush=True)
    for kind, name, bucketed, dtype_policy in planned_runs():
        if time.perf_counter() - started >= config.budget_seconds:
            result["skipped"].append({"kind": kind, "model": name, "bucketed": bucketed, "dtype_policy": dtype_policy})
            continue
        if kind == "time":
            row = timed_run(config, lengths, name, bucketed, dtype_policy)
            result["timing"].append(row)
            print(f"{name} {row['batches']:9s} {dtype_policy:15s} {row['seconds_epoch_2']:7.2f} s/epoch "
                  f"({row['seconds_per_233068']:.1f} s per 233,068; epoch 1 {row['seconds_epoch_1']:.1f} s)", flush=True)
        else:
            row = accuracy_run(config, split, name, dtype_policy)
            result["accuracy"].append(row)
            print(f"{name} real sample {dtype_policy:15s} val accuracy {row['val_accuracy']:.4f} AUC {row['val_auc']:.4f} "
                  f"regrouped vs 400-wide max |dp| {row['max_abs_diff_regrouped_vs_400']:.2e}", flush=True)
        written(config.out, result, started)
    written(config.out, result, started)
    print(f"wrote {config.out} ({len(result['skipped'])} runs skipped for time)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
