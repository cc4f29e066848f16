"""The evaluation report of a trained model: JOB/evaluation/.

    python -m trainer.evaluate --job-dir JOB [--data DIR] [--raw-input PATTERN]

trainer.task runs this after its test evaluation; run alone, it rebuilds the
finished job's model from metrics.json and its evaluated weights. It writes
    report.html      one page, pictures embedded: ROC and precision-recall,
                     reliability, confusion matrices, the threshold table, the
                     threshold chosen on validation, training curves, slices and
                     the most confident mistakes
    slices.json      metrics per review-length band and per year of the review
    evaluation.json  the report's numbers
Review texts for the list of mistakes come from --raw-input (the raw CSV or
SNAP file the data was made from); without it the list shows review ids.
"""
import dataclasses
import hashlib
import logging
import os
import sys
import warnings

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

import numpy as np
import tensorflow as tf

from reviews import drift, logs
from reviews.paths import input_problem, matched_files
from reviews.records import records_in_file
from reviews.contract import NUM_WORDS, REVIEW_ID, TIME, VOCAB_NAME
from reviews.validation import Rejection, validated_review
from trainer import TrainerError, artifacts, data, evaluation, models, report
from trainer.export import THRESHOLD
from reviews.errors import one_line_errors
from reviews.locks import exclusive_writer
from reviews.storage import checked_writable, storage_errors_in_one_line, write_whole

LOG = logging.getLogger(__name__)
MISTAKES = 10


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    job_dir: str
    data: str | None = None  # None: the data the job was trained on (metrics.json)
    raw_input: str | None = None
    batch_size: int = 512
    verbose: bool = False


def split_columns(model, spec: data.DataSpec, split: str, batch_size: int, bucket_by_length: bool = True) -> dict:
    """label, probability, review_id, num_words, oov_fraction (and time, where the
    data carries it) for every review of the split. The models are masked, so
    bucketed batches give each review the score it gets alone."""
    features = tuple(name for name in (REVIEW_ID, NUM_WORDS, TIME) if name in spec.feature_spec)
    batches = data.dataset(spec, split, batch_size, with_features=features, bucket_by_length=bucket_by_length)
    return evaluation.predictions(model, batches, oov_id=spec.vocab_size - 1)


def validation_profile(val: dict, data_dir: str) -> dict:
    """What the export carries for the drift check: the validation split's
    profile, with the validation reviews preprocessing dropped for having no word."""
    report = artifacts.read_json(os.path.join(data_dir, "report.json"), {})
    without_words = int(report.get("no_words_dropped", {}).get("val", 0))
    counts = drift.counts_of(val[NUM_WORDS], val["oov_fraction"], val["probability"], val["label"], without_words)
    return drift.profile_of(counts, f"validation split of {data_dir}")


def raw_texts(pattern: str, expected: dict[int, tuple[int, int | None]]) -> tuple[dict[int, str], int]:
    """(Id → Text, how many Ids were found as other reviews) for the reviews
    `expected` names by Id with their label and Time (None: not checked), read
    with the pipeline's own reader and validation. A review counts only if its
    Score gives the label and its Time is the one stored: an Id alone would
    take the texts of another file's reviews."""
    found: dict[int, str] = {}
    other: set[int] = set()
    for path in matched_files(pattern):
        with tf.io.gfile.GFile(path, "rb") as binary:
            for record in records_in_file(path, binary):
                try:
                    review = validated_review(record)
                except Rejection:
                    continue
                if review["Id"] not in expected or review["Id"] in found:
                    continue
                label, time = expected[review["Id"]]
                if review["Score"] != 3 and int(review["Score"] > 3) == label and time in (None, review["Time"]):
                    found[review["Id"]] = review["Text"]
                    other.discard(review["Id"])
                    if len(found) == len(expected):
                        return found, 0
                else:
                    other.add(review["Id"])
    return found, len(other)


def confident_mistakes(test: dict, threshold: float = THRESHOLD, count: int = MISTAKES) -> tuple[list[dict], list[dict]]:
    """(false positives scored highest, false negatives scored lowest), `count` each."""
    labels, probabilities = test["label"].astype(np.int64), test["probability"]
    predicted = evaluation.predicted_at(probabilities, threshold)

    def rows(indices):
        return [{"review_id": int(test[REVIEW_ID][i]), "probability": float(probabilities[i]), "label": int(labels[i]),
                 "num_words": int(test[NUM_WORDS][i]), "time": int(test[TIME][i]) if TIME in test else None,
                 "year": int(evaluation.year_of(test[TIME][i:i + 1])[0]) if TIME in test else None} for i in indices]

    false_positive = np.flatnonzero((predicted == 1) & (labels == 0))
    false_negative = np.flatnonzero((predicted == 0) & (labels == 1))
    return (rows(false_positive[np.argsort(-probabilities[false_positive], kind="stable")][:count]),
            rows(false_negative[np.argsort(probabilities[false_negative], kind="stable")][:count]))


def evaluation_of(val: dict, test: dict, job: dict) -> dict:
    """The report's numbers. The threshold is chosen on validation and only then
    measured on test, so the test figures at it are not tuned to test."""
    threshold, val_macro_f1 = evaluation.macro_f1_threshold(val["label"], val["probability"])
    labels, probabilities = test["label"].astype(np.int64), test["probability"]
    false_positives, false_negatives = confident_mistakes(test)
    return {
        **job,
        "test_examples": int(len(labels)),
        "val_examples": int(len(val["label"])),
        "test_auc": evaluation.auc_of(labels, probabilities),
        "chosen_threshold": {"threshold": threshold, "val_macro_f1": val_macro_f1, "chosen_on": "validation",
                             "maximises": "macro-F1"},
        "at_0.5": evaluation.class_metrics(labels, probabilities, THRESHOLD),
        "at_chosen": evaluation.class_metrics(labels, probabilities, threshold),
        "threshold_table": evaluation.threshold_table(labels, probabilities, threshold),
        "calibration": evaluation.calibration(labels, probabilities),
        "false_positives": false_positives,
        "false_negatives": false_negatives,
    }


def with_texts(result: dict, raw_input: str | None) -> dict:
    result["raw_input"] = raw_input
    if not raw_input:
        return result
    mistakes = result["false_positives"] + result["false_negatives"]
    texts, other = raw_texts(raw_input, {m["review_id"]: (m["label"], m["time"]) for m in mistakes})
    for mistake in mistakes:
        mistake["text"] = texts.get(mistake["review_id"])
    if len(texts) < len(mistakes):
        LOG.warning("--raw-input %s holds the texts of %d of the %d listed mistakes%s: is it the file the data was made "
                    "from?", raw_input, len(texts), len(mistakes),
                    f" ({other} of their Ids are other reviews there: another Score or Time)" if other else "")
    else:
        LOG.info("texts of all %d listed mistakes found in %s", len(mistakes), raw_input)
    return result


def write_evaluation(out_dir: str, val: dict, test: dict, history: list[dict], job: dict,
                     raw_input: str | None = None) -> dict:
    """Writes out_dir/{report.html, slices.json, evaluation.json}; returns evaluation.json's content."""
    result = with_texts(evaluation_of(val, test, job), raw_input)
    slices = evaluation.slices(test)
    labels, probabilities = test["label"].astype(np.int64), test["probability"]
    pictures = {
        "ranking": report.ranking_png(labels, probabilities),
        "calibration": report.calibration_png(labels, probabilities),
        "confusion": report.confusion_png(labels, probabilities, [THRESHOLD, result["chosen_threshold"]["threshold"]]),
        "history": report.history_png(history, job.get("evaluated_epoch", 0)),
    }
    tf.io.gfile.makedirs(out_dir)
    # Each file whole, evaluation.json (what trainer.compare reads) last.
    artifacts.write_json(os.path.join(out_dir, "slices.json"), slices)
    write_whole(os.path.join(out_dir, "report.html"), report.report_html(result, slices, pictures))
    artifacts.write_json(os.path.join(out_dir, "evaluation.json"), result)
    return result


def metrics_of(result: dict) -> dict:
    """What metrics.json (and trainer.compare) carries of the report."""
    chosen = result["at_chosen"]
    return {
        "chosen_threshold": result["chosen_threshold"]["threshold"],
        "test_macro_f1_at_chosen_threshold": chosen["macro_f1"],
        "test_f1_negative_at_chosen_threshold": chosen["negative"]["f1"],
        "expected_calibration_error": result["calibration"]["expected_calibration_error"],
        "evaluation": "evaluation/report.html",
    }


def job_relative(path: str, job_dir: str) -> str:
    relative = os.path.relpath(path, job_dir) if "://" not in path + job_dir else None
    return relative if relative and not relative.startswith("..") else path


def vocabulary_digest(data_dir: str) -> str:
    """The transform output's vocabulary file, by content: the ids a model was trained on mean its words only."""
    with tf.io.gfile.GFile(os.path.join(data_dir, "transform_fn", "assets", VOCAB_NAME), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def job_summary(metrics: dict, job_dir: str, data_dir: str) -> dict:
    return {"model": metrics["model"], "job_dir": job_dir, "data": data_dir, "evaluated_epoch": metrics.get("evaluated_epoch")}


# ------------------------------------------------------------------ alone, on a finished job

def evaluated_model(metrics: dict, job_dir: str, spec: data.DataSpec):
    weights = metrics.get("evaluated_weights") or os.path.join(
        "checkpoints", "best.weights.h5" if metrics.get("restore_best_weights") and metrics.get("best_epoch")
        else "final.weights.h5")
    path = weights if "://" in weights or os.path.isabs(weights) else os.path.join(job_dir, weights)
    if not tf.io.gfile.exists(path):
        raise TrainerError(f"{path} is missing: the job's evaluated weights are needed to rebuild its model")
    model = models.BUILDERS[metrics["model"]](spec.vocab_size)
    try:
        with warnings.catch_warnings():  # Keras warns before it raises; the error says it in one line
            warnings.simplefilter("ignore")
            model.load_weights(path)
    except ValueError:
        raise TrainerError(f"{path} does not fit a {metrics['model']} model over {spec.data_dir} (vocabulary "
                         f"{spec.vocab_size:,} ids, the job's {metrics['vocab_size']:,}): is --data the job's?") from None
    return model


def evaluate(config: EvaluateConfig) -> dict:
    if not tf.io.gfile.isdir(config.job_dir):
        raise TrainerError(f"--job-dir {config.job_dir} does not exist")
    metrics_path = os.path.join(config.job_dir, "metrics.json")
    metrics = artifacts.read_json(metrics_path)
    if metrics is None:
        raise TrainerError(f"{config.job_dir} has no metrics.json (not a finished trainer.task run)")
    data_dir = config.data or metrics["data"]
    raw_input = config.raw_input or metrics.get("raw_input")  # the job's own, when it had one
    if raw_input and (problem := input_problem(raw_input, "--raw-input")):
        raise TrainerError(problem)
    spec = data.data_spec(data_dir)
    if metrics.get("vocabulary_sha256") and vocabulary_digest(data_dir) != metrics["vocabulary_sha256"]:
        raise TrainerError(f"--data {data_dir} was made with another vocabulary than the job's data ({metrics['data']}): "
                         "its ids mean other words to this model")
    checked_writable(os.path.join(config.job_dir, "evaluation"), "the evaluation report in")
    model = evaluated_model(metrics, config.job_dir, spec)
    bucketed = bool(metrics.get("bucket_by_length", True))
    val = split_columns(model, spec, "val", config.batch_size, bucketed)
    test = split_columns(model, spec, "test", config.batch_size, bucketed)
    history = artifacts.read_json(os.path.join(config.job_dir, "history.json"), [])
    result = write_evaluation(os.path.join(config.job_dir, "evaluation"), val, test, history,
                              job_summary(metrics, config.job_dir, data_dir), raw_input)
    if data_dir == metrics["data"]:  # metrics.json carries the report of the job's own test split
        artifacts.write_json(metrics_path, {**metrics, **metrics_of(result)})
    return result


def parsed_config(argv=None) -> EvaluateConfig:
    parser = logs.OneLineParser(name="evaluate", prog="python -m trainer.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--job-dir", required=True, help="a finished trainer.task job")
    parser.add_argument("--data", default=None, help="its preprocessing output (default: the one metrics.json names)")
    parser.add_argument("--raw-input", default=None, metavar="PATTERN",
                        help="the raw reviews (CSV or SNAP) the data was made from: texts for the list of mistakes "
                             "(default: the job's own --raw-input, if it had one)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    return EvaluateConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(EvaluateConfig)})


def summary_line(result: dict, out_dir: str) -> str:
    chosen, at_half = result["at_chosen"], result["at_0.5"]
    return (f"threshold {result['chosen_threshold']['threshold']:.3f} (max macro-F1 on validation): test macro-F1 "
            f"{chosen['macro_f1']:.4f}, F1 negative {chosen['negative']['f1']:.4f} (at 0.5: {at_half['macro_f1']:.4f}, "
            f"{at_half['negative']['f1']:.4f}); calibration error {result['calibration']['expected_calibration_error']:.4f}; "
            f"wrote {out_dir}/report.html")


@one_line_errors("evaluate")
def main(argv=None) -> int:
    config = parsed_config(argv)
    logs.configure(config.verbose)
    with exclusive_writer(config.job_dir, "trainer.evaluate"):
        with storage_errors_in_one_line(os.path.join(config.job_dir, "evaluation"), "the evaluation report in"):
            result = evaluate(config)
    print(summary_line(result, os.path.join(config.job_dir, "evaluation")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
