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
import logging
import os
import sys

if __name__ == "__main__":  # before TensorFlow loads: its start-up notices are not our output
    from pipelines.logs import quiet_start

    quiet_start()

import numpy as np
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines import drift, logs
from pipelines.runtime import input_problem, matched_files
from pipelines.sources import records_in_file
from pipelines.transform import NUM_WORDS, REVIEW_ID, TIME
from pipelines.validate import Rejection, validated_review
from trainer import artifacts, data, evaluation, models, report
from trainer.export import THRESHOLD

LOG = logging.getLogger(__name__)
MISTAKES = 10


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    job_dir: str
    data: str | None = None  # None: the data the job was trained on (metrics.json)
    raw_input: str | None = None
    batch_size: int = 512
    verbose: bool = False


class UsageError(Exception):
    """Reported on one line with exit status 2."""


def split_columns(model, spec: data.DataSpec, split: str, batch_size: int, bucket_by_length: bool = True) -> dict:
    """label, probability, review_id, num_words, oov_fraction (and time, where the
    data carries it) for every review of the split. The models are masked, so
    bucketed batches give each review the score it gets alone."""
    features = tuple(name for name in (REVIEW_ID, NUM_WORDS, TIME) if name in spec.feature_spec)
    batches = data.dataset(spec, split, batch_size, with_features=features, bucket_by_length=bucket_by_length)
    return evaluation.predictions(model, batches, oov_id=spec.vocab_size - 1)


def validation_profile(val: dict, data_dir: str) -> dict:
    """What the export carries for the drift check: the validation split's profile."""
    counts = drift.counts_of(val[NUM_WORDS], val["oov_fraction"], val["probability"], val["label"])
    return drift.profile_of(counts, f"validation split of {data_dir}")


def raw_texts(pattern: str, wanted: set[int]) -> dict[int, str]:
    """Id → Text for the wanted reviews, read with the pipeline's own reader and
    validation (so an Id means the same review it meant there)."""
    found: dict[int, str] = {}
    for path in matched_files(pattern):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as binary:
            for record in records_in_file(path, binary):
                try:
                    review = validated_review(record)
                except Rejection:
                    continue
                if review["Id"] in wanted and review["Id"] not in found:
                    found[review["Id"]] = review["Text"]
                    if len(found) == len(wanted):
                        return found
    return found


def confident_mistakes(test: dict, threshold: float = THRESHOLD, count: int = MISTAKES) -> tuple[list[dict], list[dict]]:
    """(false positives scored highest, false negatives scored lowest), `count` each."""
    labels, probabilities = test["label"].astype(np.int64), test["probability"]
    predicted = evaluation.predicted_at(probabilities, threshold)

    def rows(indices):
        return [{"review_id": int(test[REVIEW_ID][i]), "probability": float(probabilities[i]), "label": int(labels[i]),
                 "num_words": int(test[NUM_WORDS][i]),
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
    if not raw_input:
        return result
    mistakes = result["false_positives"] + result["false_negatives"]
    texts = raw_texts(raw_input, {m["review_id"] for m in mistakes})
    for mistake in mistakes:
        mistake["text"] = texts.get(mistake["review_id"])
    LOG.info("texts of %d of %d listed mistakes found in %s", len(texts), len(mistakes), raw_input)
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
    artifacts.write_json(os.path.join(out_dir, "slices.json"), slices)
    artifacts.write_json(os.path.join(out_dir, "evaluation.json"), result)
    with tf.io.gfile.GFile(os.path.join(out_dir, "report.html"), "w") as handle:
        handle.write(report.report_html(result, slices, pictures))
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


def job_summary(metrics: dict, job_dir: str, data_dir: str) -> dict:
    return {"model": metrics["model"], "job_dir": job_dir, "data": data_dir, "evaluated_epoch": metrics.get("evaluated_epoch")}


# ------------------------------------------------------------------ alone, on a finished job

def evaluated_model(metrics: dict, job_dir: str, spec: data.DataSpec):
    path = metrics.get("evaluated_weights") or os.path.join(
        job_dir, "checkpoints", "best.weights.h5" if metrics.get("restore_best_weights") and metrics.get("best_epoch")
        else "final.weights.h5")
    if not tf.io.gfile.exists(path):
        raise UsageError(f"{path} is missing: the job's evaluated weights are needed to rebuild its model")
    model = models.BUILDERS[metrics["model"]](spec.vocab_size)
    try:
        model.load_weights(path)
    except ValueError as error:
        raise UsageError(f"{path} does not fit a {metrics['model']} model over {spec.data_dir} "
                         f"(vocabulary {spec.vocab_size:,}): {str(error).splitlines()[0][:160]}") from None
    return model


def evaluate(config: EvaluateConfig) -> dict:
    metrics = artifacts.read_json(os.path.join(config.job_dir, "metrics.json"))
    if metrics is None:
        raise UsageError(f"{config.job_dir} has no metrics.json (not a finished trainer.task run)")
    data_dir = config.data or metrics["data"]
    if config.raw_input and input_problem(config.raw_input):
        raise UsageError(input_problem(config.raw_input))
    spec = data.data_spec(data_dir)
    model = evaluated_model(metrics, config.job_dir, spec)
    bucketed = bool(metrics.get("bucket_by_length", True))
    val = split_columns(model, spec, "val", config.batch_size, bucketed)
    test = split_columns(model, spec, "test", config.batch_size, bucketed)
    history = artifacts.read_json(os.path.join(config.job_dir, "history.json"), [])
    return write_evaluation(os.path.join(config.job_dir, "evaluation"), val, test, history,
                            job_summary(metrics, config.job_dir, data_dir), config.raw_input)


def parsed_config(argv=None) -> EvaluateConfig:
    parser = logs.OneLineParser(name="evaluate", prog="python -m trainer.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--job-dir", required=True, help="a finished trainer.task job")
    parser.add_argument("--data", default=None, help="its preprocessing output (default: the one metrics.json names)")
    parser.add_argument("--raw-input", default=None, metavar="PATTERN",
                        help="the raw reviews (CSV or SNAP) the data was made from: texts for the list of mistakes")
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


def main(argv=None) -> int:
    config = parsed_config(argv)
    logs.configure(config.verbose)
    try:
        result = evaluate(config)
    except (UsageError, data.DataError) as error:
        print(f"evaluate: error: {error}", file=sys.stderr)
        return 2
    print(summary_line(result, os.path.join(config.job_dir, "evaluation")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
