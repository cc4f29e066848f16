"""Train a sentiment model on the preprocessing output and export it.

    python -m trainer.task --data DIR --job-dir JOB [--model lstm1|lstm2|bilstm|fasttext|tfidf] [--epochs N] ...

JOB (local or gs://) receives history.json, metrics.json, loss.png, logs/
(TensorBoard), run.json (the model a started run trains), checkpoints/ (the
best epoch, and the backup an interrupted run resumes from) and
export/<version>/ (the SavedModel that takes raw text). On Vertex AI the AIP_MODEL_DIR, AIP_CHECKPOINT_DIR and
AIP_TENSORBOARD_LOG_DIR variables it sets take precedence. Under
MultiWorkerMirroredStrategy (TF_CONFIG) only the chief writes the artifacts;
the other workers write theirs to JOB/.scratch-<task>/, removed at the end.
"""
import argparse
import contextlib
import dataclasses
import logging
import math
import os
import sys
import time

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

import tensorflow as tf

# Must come before keras is used: it sets TF_USE_LEGACY_KERAS for tf.keras,
# which this package never uses (`import keras` is Keras 3).
import tensorflow_transform as tft  # noqa: I001

import keras
import numpy as np

from reviews import logs
from reviews.paths import input_problem, is_within, output_problem
from reviews.errors import one_line_errors
from reviews.locks import exclusive_writer
from reviews.storage import checked_space, checked_writable, storage_errors_in_one_line
from trainer import TrainerError, artifacts, data, evaluate, evaluation, export, models, recipes, tuning
from trainer.distribution import cluster_task, distribution_strategy, fit_ready, is_chief, worker_shard


LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data: str
    job_dir: str
    model: str = "lstm1"
    epochs: int | None = None  # None: the model's recipe (10 for the notebook's LSTMs)
    batch_size: int | None = None  # global, across all replicas; None: the model's recipe (2048 for the LSTMs)
    learning_rate: float | None = None  # None: the model's recipe (trainer/recipes.py)
    seed: int = 7
    strategy: str = "auto"
    steps_per_epoch: int | None = None  # default: one pass over train
    # On by default: 4.2x and 7.3x the examples/s at equal accuracy
    # (benchmarks/train.py, docs/benchmarks.md "Length-bucketed vs fixed 400").
    bucket_by_length: bool = True
    mixed_precision: bool = False
    # The epoch with the lowest validation loss is evaluated and exported; the
    # notebook evaluated the last one (its validation loss was lowest at epoch 4 of 10).
    restore_best_weights: bool = True
    early_stopping_patience: int | None = None  # None: the model's recipe; 0: off
    raw_input: str | None = None  # the raw reviews: texts for the evaluation report's list of mistakes
    evaluation: bool = True  # write JOB/evaluation/ (a workflow may run trainer.evaluate as its own step instead)
    allow_unbalanced: bool = False  # train on data whose report.json ledger does not balance (rows were lost)
    verbose: bool = False
    overwrite: bool = False


@dataclasses.dataclass(frozen=True)
class JobPaths:
    """Where this process writes; a non-chief worker gets a scratch copy."""

    root: str
    export_root: str
    export_versioned: bool  # TF Serving layout; Vertex wants AIP_MODEL_DIR itself
    checkpoints: str
    logs: str
    backup: str
    is_chief: bool

    @property
    def history(self) -> str:
        return os.path.join(self.root, "history.json")

    @property
    def metrics(self) -> str:
        return os.path.join(self.root, "metrics.json")

    @property
    def loss_plot(self) -> str:
        return os.path.join(self.root, "loss.png")

    @property
    def best_weights(self) -> str:
        return os.path.join(self.checkpoints, "best.weights.h5")

    @property
    def best_state(self) -> str:
        return os.path.join(self.checkpoints, "best.json")

    @property
    def final_weights(self) -> str:
        return os.path.join(self.checkpoints, "final.weights.h5")


def parsed_config(argv=None) -> TrainConfig:
    parser = logs.OneLineParser(name="trainer", prog="python -m trainer.task", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="output directory of pipelines.preprocess")
    parser.add_argument("--job-dir", required=True, help="where this job writes (local or gs://)")
    parser.add_argument("--model", choices=sorted(models.BUILDERS), default="lstm1", help="default: lstm1, the notebook's")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's, 10 for the notebook's LSTMs")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="global batch size (default: the model's, 2048 for the notebook's LSTMs, 256 for the others)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="the optimizer's step size (default: the model's, Adam's 0.001 for the notebook's LSTMs)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strategy", choices=("auto", "one-device", "mirrored", "multi-worker"), default="auto")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="cap steps per epoch (smoke runs)")
    parser.add_argument("--bucket-by-length", action=argparse.BooleanOptionalAction, default=TrainConfig.bucket_by_length,
                        help="batch reviews of similar length, each batch cut to its longest review")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=False,
                        help="bfloat16 compute on GPUs that have it (float32 output layer); ignored on CPU")
    parser.add_argument("--restore-best-weights", action=argparse.BooleanOptionalAction, default=True,
                        help="evaluate and export the best epoch: lowest validation loss (highest validation AUC for tfidf); "
                             "--no-...: the last epoch")
    parser.add_argument("--early-stopping-patience", type=int, default=None, metavar="N",
                        help="stop after N epochs without a better validation loss (AUC for tfidf); 0: never "
                             "(default: the model's, never for lstm1/lstm2)")
    parser.add_argument("--raw-input", default=None, metavar="PATTERN",
                        help="the raw reviews --data was made from: texts for the evaluation report's list of mistakes")
    parser.add_argument("--evaluation", action=argparse.BooleanOptionalAction, default=True,
                        help="write the evaluation report to JOB/evaluation/ (--no-evaluation: leave it to trainer.evaluate)")
    parser.add_argument("--allow-unbalanced", action="store_true",
                        help="train on --data whose report.json says balanced: false (rows were lost; recorded in metrics.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run in --job-dir")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    args = parser.parse_args(argv)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    for name in ("epochs", "batch_size", "steps_per_epoch"):
        value = getattr(config, name)
        if value is not None and value < 1:  # the last one is optional
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if config.early_stopping_patience is not None and config.early_stopping_patience < 0:
        parser.error(f"--early-stopping-patience must be 0 (never) or positive, got {config.early_stopping_patience}")
    if config.learning_rate is not None and not 0 < config.learning_rate < 100:
        parser.error(f"--learning-rate must be greater than 0 and less than 100, got {config.learning_rate}")
    return with_recipe(config)


def with_recipe(config: TrainConfig) -> TrainConfig:
    """The model's defaults where the command line left a choice open."""
    recipe = recipes.RECIPES[config.model]
    patience = recipe.early_stopping_patience if config.early_stopping_patience is None else config.early_stopping_patience
    return dataclasses.replace(config, epochs=config.epochs or recipe.epochs, batch_size=config.batch_size or recipe.batch_size,
                               learning_rate=config.learning_rate or recipe.learning_rate,
                               early_stopping_patience=patience or None)


def job_paths(job_dir: str) -> JobPaths:
    task_type, index, _ = cluster_task()
    chief = is_chief()
    root = job_dir if chief else os.path.join(job_dir, f".scratch-{task_type}-{index}")
    checkpoints = os.environ.get("AIP_CHECKPOINT_DIR") or os.path.join(job_dir, "checkpoints")
    return JobPaths(
        root=root,
        export_root=(os.environ.get("AIP_MODEL_DIR") if chief else None) or os.path.join(root, "export"),
        export_versioned=not (chief and os.environ.get("AIP_MODEL_DIR")),
        checkpoints=checkpoints if chief else os.path.join(root, "checkpoints"),
        logs=(os.environ.get("AIP_TENSORBOARD_LOG_DIR") if chief else None) or os.path.join(root, "logs"),
        # Each task backs up on its own (workers writing one file would clobber
        # it); BackupAndRestore removes the folder once fit finishes.
        backup=os.path.join(checkpoints, f"backup-{task_type}-{index}"),
        is_chief=chief,
    )


def prepared_job_dir(config: TrainConfig) -> None:
    """A finished run is kept unless --overwrite; an unfinished one is resumed,
    if it was a run of the same model (JOB/run.json says which). (job_dir_lock
    has refused a job dir that is, or lies under, a file.)"""
    run_file = os.path.join(config.job_dir, "run.json")
    started_model = (artifacts.read_json(run_file) or {}).get("model")
    finished = tf.io.gfile.exists(os.path.join(config.job_dir, "metrics.json"))
    if finished or (started_model and started_model != config.model):
        what = "a finished run" if finished else f"an unfinished run of --model {started_model}"
        if not config.overwrite:
            resume = "" if finished else f" (or rerun with --model {started_model} to resume it)"
            raise TrainerError(f"{config.job_dir} already holds {what}; pass --overwrite to replace it{resume}")
        if is_within(config.data, config.job_dir):
            raise TrainerError(f"--overwrite would delete --data {config.data!r}, which lies inside --job-dir {config.job_dir!r}")
        if is_chief():
            tf.io.gfile.rmtree(config.job_dir)
    checked_writable(config.job_dir, "--job-dir")
    tf.io.gfile.makedirs(config.job_dir)
    if is_chief():
        artifacts.write_json(run_file, {"model": config.model, "data": config.data})


READ_ERRORS = (tf.errors.DataLossError, tf.errors.InvalidArgumentError)


def checked_records(spec: data.DataSpec) -> None:
    """Parses one batch of every split and counts every split's records now, so
    a mismatched or damaged file is a clear error, not a crash (or a silently
    smaller split) mid-fit."""
    for split in data.SPLITS:
        try:
            next(iter(data.dataset(spec, split, 2)))
        except READ_ERRORS as error:
            first_line = str(error).strip().splitlines()[0][:200]
            raise TrainerError(f"{split} TFRecords do not match the transformed feature spec: {first_line}") from None
    problem = data.record_count_problem(spec)
    if problem:
        raise TrainerError(problem)


@contextlib.contextmanager
def damaged_files_named(spec: data.DataSpec):
    """A TFRecord file found truncated or corrupt while training or evaluating
    becomes one line that names it; any other error passes through unchanged."""
    try:
        yield
    except READ_ERRORS:
        damaged = data.first_damaged_file(spec)
        if damaged is None:
            raise
        path, problem = damaged
        raise TrainerError(f"{path} is damaged ({problem}): rerun pipelines.preprocess") from None


def resumed_epoch(backup_dir: str) -> int:
    metadata = artifacts.read_json(os.path.join(backup_dir, "training_metadata.json"), {})
    return int(metadata.get("epoch", 0))


def callbacks(paths: JobPaths, examples_per_epoch: int, best: artifacts.BestEpochCheckpoint) -> list[keras.callbacks.Callback]:
    chosen = [
        artifacts.FreeSpaceGuard(paths.checkpoints),  # first: it stops training before a save that would not fit
        best,  # before the backup: a kill between the two re-runs the epoch rather than losing its best
        keras.callbacks.BackupAndRestore(paths.backup, double_checkpoint=True),
        keras.callbacks.TensorBoard(paths.logs),
        artifacts.EpochRecorder(paths.history, examples_per_epoch),
    ]
    if tuning.in_tuning_trial() and paths.is_chief:
        chosen.append(tuning.TuningMetricReporter(recipes.TUNING_METRIC))
    return chosen


def dtype_policy(mixed_precision: bool) -> str:
    """mixed_bfloat16 where the GPU computes in bf16 (compute capability 8.0+), else float32."""
    if not mixed_precision:
        return "float32"
    gpus = tf.config.list_physical_devices("GPU")
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0)) if gpus else (0, 0)
    if capability < (8, 0):
        LOG.info("--mixed-precision: no GPU with bfloat16 here, training in float32")
        return "float32"
    return "mixed_bfloat16"


def architecture(model: keras.Model) -> str:
    """The layers that hold weights or shape the features, as docs/training.md writes them."""
    parts = []
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.Embedding):
            parts.append(f"Embedding({layer.input_dim}, {layer.output_dim})")
        elif isinstance(layer, keras.layers.Bidirectional):
            parts.append(f"Bidirectional(LSTM({layer.forward_layer.units}))")
        elif isinstance(layer, keras.layers.LSTM):
            parts.append(f"LSTM({layer.units})")
        elif isinstance(layer, models.NgramIds):
            parts.append(f"words + bigrams hashed to {layer.buckets:,}")
        elif isinstance(layer, models.MeanEmbedding):
            parts.append(f"mean of Embedding({layer.feature_count:,}, {layer.dim})")
        elif isinstance(layer, models.TfidfLogit):
            parts.append(f"TF-IDF (train idf, min_df {layer.min_df}) → logistic({layer.feature_count:,})")
        elif isinstance(layer, keras.layers.Dense):
            parts.append(f"Dense({layer.units}, {layer.activation.__name__})")
    return " → ".join(parts)


def idf_adapted(model: keras.Model, spec: data.DataSpec, batch_size: int) -> keras.Model:
    """A tfidf model's document frequencies, counted over the whole train split
    (every worker counts them all, so the replicas agree)."""
    if not models.learns_idf(model):
        return model
    started = time.perf_counter()
    model = models.adapted(model, (tokens for tokens, _ in data.dataset(spec, "train", batch_size)))
    LOG.info("document frequencies of %s features counted over %s train reviews in %.1f s",
             f"{model.get_layer('ngrams').feature_count:,}", f"{spec.examples['train']:,}", time.perf_counter() - started)
    return model


def job_dir_lock(job_dir: str):
    """The job dir's one-writer lock, held by the chief (the other workers write scratch dirs of their own)."""
    problem = output_problem(job_dir, "--job-dir")
    if problem:
        raise TrainerError(problem)
    return exclusive_writer(job_dir, "trainer.task") if is_chief() else contextlib.nullcontext()


def balanced_data(spec: data.DataSpec, allow_unbalanced: bool) -> data.DataSpec:
    """Data whose ledger does not balance lost rows somewhere: refused unless the user says otherwise."""
    if not spec.balanced and not allow_unbalanced:
        raise TrainerError(f"{spec.data_dir}/report.json does not say balanced: true (rows were lost between "
                             "preprocessing stages): rerun pipelines.preprocess, or pass --allow-unbalanced to train on it anyway")
    if not spec.balanced:
        LOG.warning("training on %s although its ledger does not balance (--allow-unbalanced)", spec.data_dir)
    return spec


@dataclasses.dataclass
class Fitted:
    """What fit leaves behind: the model, its epochs, and which weights the model now holds."""

    model: keras.Model
    strategy: tf.distribute.Strategy
    dtype_policy: str
    history: list[dict]
    best: artifacts.BestEpochCheckpoint
    weights: str = ""  # the checkpoint file the model holds (and the export and evaluation use)
    evaluated: dict = dataclasses.field(default_factory=dict)  # that epoch's line of history.json


def training_batches(config: TrainConfig, spec: data.DataSpec) -> tf.data.Dataset:
    """Built before anything is written: it fails if a worker would get no file."""
    return data.dataset(spec, "train", config.batch_size, shuffle=True, repeat=True, seed=config.seed,
                        worker_shard=worker_shard(), bucket_by_length=config.bucket_by_length)


def compiled_model(config: TrainConfig, spec: data.DataSpec, strategy: tf.distribute.Strategy, policy: str) -> keras.Model:
    keras.config.set_dtype_policy(policy)
    recipe = recipes.RECIPES[config.model]
    with strategy.scope():
        model = models.compiled(models.BUILDERS[config.model](spec.vocab_size), config.learning_rate, recipe.optimizer)
        return fit_ready(idf_adapted(model, spec, config.batch_size), strategy)


def fit(config: TrainConfig, spec: data.DataSpec, paths: JobPaths, train_batches: tf.data.Dataset,
        strategy: tf.distribute.Strategy) -> Fitted:
    """Fits (resuming an interrupted run from its backup) and saves the last epoch's weights."""
    steps = config.steps_per_epoch or math.ceil(spec.examples["train"] / config.batch_size)
    val_batches = data.with_counted_batches(data.dataset(spec, "val", config.batch_size,
                                                         bucket_by_length=config.bucket_by_length))
    policy = dtype_policy(config.mixed_precision)
    model = compiled_model(config, spec, strategy, policy)
    LOG.info("%s: %s, %s params, %s with %d replicas, %d steps/epoch of %d, %s, %s", config.model, architecture(model),
             f"{model.count_params():,}", type(strategy).__name__, strategy.num_replicas_in_sync, steps, config.batch_size, policy,
             "length-bucketed" if config.bucket_by_length else f"fixed length {spec.sequence_length}")
    for repair in artifacts.repaired_checkpoints(paths.checkpoints, paths.backup):
        LOG.warning("%s", repair)
    done_epochs = resumed_epoch(paths.backup)
    if done_epochs:
        LOG.info("resuming at epoch %d from %s", done_epochs + 1, paths.backup)
    recipe = recipes.RECIPES[config.model]
    best = artifacts.BestEpochCheckpoint(paths.best_weights, paths.best_state, config.early_stopping_patience,
                                         resumed=done_epochs > 0, monitor=recipe.best_epoch_by)
    model.fit(
        train_batches,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=val_batches,
        callbacks=callbacks(paths, steps * config.batch_size, best),
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar on a terminal, a line per epoch in logs
        shuffle=False,  # the dataset shuffles itself
    )
    model.save_weights(paths.final_weights)
    history = artifacts.read_json(paths.history, [])
    if len(history) < config.epochs:
        LOG.info("stopped early after epoch %d of %d: no better %s for %d epochs",
                 len(history), config.epochs, recipe.best_epoch_by, config.early_stopping_patience)
    return Fitted(model, strategy, policy, history, best, weights=paths.final_weights, evaluated=history[-1])


def with_chosen_weights(fitted: Fitted, config: TrainConfig, paths: JobPaths) -> Fitted:
    """The best epoch's weights when --restore-best-weights (the default), else the last epoch's."""
    if not (config.restore_best_weights and fitted.best.best_epoch):
        return fitted
    fitted.model.load_weights(paths.best_weights)
    evaluated = next(e for e in fitted.history if e["epoch"] == fitted.best.best_epoch)
    return dataclasses.replace(fitted, weights=paths.best_weights, evaluated=evaluated)


def job_metrics(config: TrainConfig, spec: data.DataSpec, fitted: Fitted, test: dict) -> dict:
    """metrics.json: the run's settings, its test metrics and the epoch they come from."""
    model, history, evaluated, recipe = fitted.model, fitted.history, fitted.evaluated, recipes.RECIPES[config.model]
    return {
        "model": config.model,
        "data": config.data,
        "architecture": architecture(model),
        "params": model.count_params(),
        "trainable_params": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
        "epochs": len(history),
        "epochs_requested": config.epochs,
        "batch_size": config.batch_size,
        "replicas": fitted.strategy.num_replicas_in_sync,
        "vocab_size": spec.vocab_size,
        "sequence_length": spec.sequence_length,
        "bucket_by_length": config.bucket_by_length,
        "dtype_policy": fitted.dtype_policy,
        "optimizer": recipe.optimizer_name,
        "learning_rate": config.learning_rate,
        "data_balanced": spec.balanced,
        "allow_unbalanced": config.allow_unbalanced,
        **evaluation.binary_metrics(test["label"], test["probability"]),
        "best_epoch": fitted.best.best_epoch,
        "best_epoch_by": recipe.best_epoch_by,
        "restore_best_weights": config.restore_best_weights,
        "early_stopping_patience": config.early_stopping_patience,
        "evaluated_epoch": evaluated["epoch"],
        # Relative to the job when inside it, so a copied or moved job evaluates its own weights.
        "evaluated_weights": evaluate.job_relative(fitted.weights, config.job_dir),
        "vocabulary_sha256": evaluate.vocabulary_digest(config.data),
        "raw_input": config.raw_input,
        "train_loss": evaluated["loss"],
        "val_loss": evaluated.get("val_loss"),
        "val_accuracy": evaluated.get("val_accuracy"),
        "seconds_per_epoch": sum(e["seconds"] for e in history) / max(len(history), 1),
        "examples_per_second": sum(e["examples_per_second"] for e in history) / max(len(history), 1),
    }


def unpublished_export(config: TrainConfig, paths: JobPaths, model: keras.Model, val: dict) -> str:
    """The raw-text SavedModel, written but not yet published (export.publish does that last)."""
    export_dir = export.versioned_dir(paths.export_root) if paths.export_versioned else paths.export_root
    checked_space(export_dir, export.bytes_needed(model, config.data), "the export")
    return export.export_model(model, tft.TFTransformOutput(config.data), export_dir,
                               profile=evaluate.validation_profile(val, config.data), published=False)


def write_job_files(config: TrainConfig, paths: JobPaths, fitted: Fitted, metrics: dict, val: dict, test: dict) -> dict:
    """The loss plot, the evaluation report, the published export and metrics.json, in that
    order; returns the metrics with the evaluation's figures added."""
    recipe = recipes.RECIPES[config.model]
    artifacts.write_loss_plot(paths.loss_plot, fitted.history, f"{config.model}: train vs validation loss",
                              fitted.best.best_epoch, recipes.best_epoch_phrase(recipe.best_epoch_by))
    if paths.is_chief and config.evaluation:
        result = evaluate.write_evaluation(os.path.join(paths.root, "evaluation"), val, test, fitted.history,
                                           evaluate.job_summary(metrics, config.job_dir, config.data), config.raw_input)
        metrics = {**metrics, **evaluate.metrics_of(result)}
    export.publish(metrics["export"])  # only now do the gate, the push and TF Serving see it
    artifacts.write_json(paths.metrics, metrics)  # last: its presence marks the run finished
    if not paths.is_chief:  # its artifacts only served the collective ops that wrote them
        tf.io.gfile.rmtree(paths.root)
    return metrics


def train(config: TrainConfig) -> dict:
    """Fits, evaluates on test, exports; returns metrics.json's content. Reads like a pipeline:
    check the inputs, claim the job dir, fit, choose the weights, evaluate, export, write."""
    strategy = distribution_strategy(config.strategy)  # first: collectives must start before other ops
    if config.raw_input and (problem := input_problem(config.raw_input, "--raw-input")):
        raise TrainerError(problem)
    spec = balanced_data(data.data_spec(config.data), config.allow_unbalanced)
    train_batches = training_batches(config, spec)
    checked_records(spec)
    prepared_job_dir(config)
    paths = job_paths(config.job_dir)
    keras.utils.set_random_seed(config.seed)

    with damaged_files_named(spec):
        fitted = with_chosen_weights(fit(config, spec, paths, train_batches, strategy), config, paths)
        test = evaluate.split_columns(fitted.model, spec, "test", config.batch_size, config.bucket_by_length)
        val = evaluate.split_columns(fitted.model, spec, "val", config.batch_size, config.bucket_by_length)
    metrics = job_metrics(config, spec, fitted, test)
    metrics["export"] = unpublished_export(config, paths, fitted.model, val)
    return write_job_files(config, paths, fitted, metrics, val, test)


@one_line_errors("trainer")
def main(argv=None) -> int:
    config = parsed_config(argv)
    logs.configure(config.verbose)
    config = dataclasses.replace(config, job_dir=tuning.trial_job_dir(config.job_dir))
    started = time.time()
    try:
        with job_dir_lock(config.job_dir):
            with storage_errors_in_one_line(config.job_dir, "--job-dir"):
                metrics = train(config)
    except KeyboardInterrupt:
        print(f"trainer: interrupted; the same command resumes from the last finished epoch in {config.job_dir}",
              file=sys.stderr)
        return 130
    if is_chief():
        auc = "n/a (one class)" if metrics["test_auc"] is None else f"{metrics['test_auc']:.4f}"
        print(f"epoch {metrics['evaluated_epoch']} of {metrics['epochs']} "
              f"({recipes.best_epoch_phrase(metrics['best_epoch_by'])}: epoch {metrics['best_epoch']}): "
              f"test accuracy {metrics['test_accuracy']:.4f}, AUC {auc}, loss {metrics['test_loss']:.4f} "
              f"on {metrics['test_examples']:,} reviews ({time.time() - started:.0f} s)")
        if config.evaluation:
            evaluated = os.path.join(config.job_dir, "evaluation")
            print(evaluate.summary_line(artifacts.read_json(os.path.join(evaluated, "evaluation.json")), evaluated))
        report = "evaluation/," if config.evaluation else ""
        print(f"wrote {config.job_dir}/{{history.json,metrics.json,loss.png,{report}logs/,checkpoints/}} and {metrics['export']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
