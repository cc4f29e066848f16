"""Batch scoring of raw reviews with an exported model, in Beam.

    python -m pipelines.score --model EXPORT --input PATTERN --output PREFIX [--format csv|jsonl] [Beam options]

Reads with the same readers and validation as pipelines.preprocess (rejected
rows go to PREFIX-rejected-*.jsonl with their reasons, and so do reviews that
clean to no words, with reason no_words and no score), runs the export's
raw-text signature through RunInference in batches, and writes Id, probability
and label. Local (FnApiRunner) by default; Dataflow with the same flags as
preprocess. Beam's own TensorFlow handler needs tensorflow_hub and Keras 2
loading, so a small ModelHandler over tf.saved_model.load is used instead.

The drift check: the scored reviews' profile (reviews/drift.py: words per
review, out-of-vocabulary fraction, scores, and the label balance of reviews
whose Score is not 3) is compared with the one the export carries, in
PREFIX-drift.json; a warning says when they differ significantly.
"""
import dataclasses
import json
import logging
import os
import sys

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output
from typing import Any, Iterable, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.metrics import Metrics

from reviews import drift, logs
from reviews.exports import NO_WORDS, NO_WORDS_DETAIL, ExportError, loaded_signature, served, training_profile
from pipelines.runtime import beam_args_or_exit, new_pipeline
from reviews.paths import input_problem, output_problem
from pipelines.sources import ReadReviews
from pipelines.validate import REJECTED, ValidateReviews
from pipelines import PipelineError
from reviews.errors import one_line_errors
from reviews.storage import checked_writable, storage_errors_in_one_line, write_whole

LOG = logging.getLogger(__name__)
CSV_HEADER = "Id,probability,label"


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    model: str
    input: str
    output: str
    format: str = "csv"
    batch_size: int = 256
    num_shards: int = 0  # 0: the runner decides
    verbose: bool = False


class RawTextModelHandler(ModelHandler[str, PredictionResult, Any]):
    """Review texts → {probability, label} through the export's serving_default."""

    def __init__(self, export_dir: str, max_batch_size: int = 256):
        self._export_dir = export_dir
        self._max_batch_size = max_batch_size

    def load_model(self):
        return loaded_signature(self._export_dir)

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        outputs = served(model, list(batch))
        names = [name for name in ("probability", "label", "num_words", "oov_fraction") if name in outputs]
        for i, text in enumerate(batch):
            inference = {name: outputs[name][i].item() for name in names}
            yield PredictionResult(text, inference if inference.get("num_words", 1) > 0 else None)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}


class SplitUnscoredFn(beam.DoFn):
    """Keyed results → scored ones, and on `rejected` a JSON line for each review
    that cleaned to no words (no score is a better answer than the model's prior)."""

    def __init__(self):
        self.no_words = Metrics.counter("score", "rejected_no_words")

    def process(self, keyed_result):
        (review_id, _), result = keyed_result
        if result.inference is not None:
            yield keyed_result
            return
        self.no_words.inc()
        yield beam.pvalue.TaggedOutput(REJECTED, json.dumps(
            {"Id": review_id, "reason": NO_WORDS, "detail": NO_WORDS_DETAIL,
             "values": [result.example[:200]]}, ensure_ascii=True))


class ProfileFn(beam.CombineFn):
    """Reviews through the model (scored, or with no words) → the histogram
    counts of their profile (drift.counts_of)."""

    def create_accumulator(self):
        return drift.empty_counts()

    def add_input(self, accumulator, keyed_result):
        (_, score), result = keyed_result
        inference = result.inference
        if inference is None:  # no words: no score, counted as such
            counts = drift.counts_of(np.zeros(0), np.zeros(0), np.zeros(0), None, without_words=1)
        else:
            label = -1 if score == 3 else int(score > 3)  # the notebook's labels; Score 3 has none
            counts = drift.counts_of(np.array([inference["num_words"]]), np.array([inference["oov_fraction"]]),
                                     np.array([inference["probability"]]), np.array([label]))
        return drift.merged_counts([accumulator, counts])

    def merge_accumulators(self, accumulators):
        return drift.merged_counts(accumulators)

    def extract_output(self, accumulator):
        return accumulator


def write_drift(counts: dict, path: str, training: dict, source: str) -> dict:
    report = drift.drift_report(training, drift.profile_of(counts, source))
    write_whole(path, json.dumps(report, indent=2))  # a full disk leaves no empty verdict
    return report


def formatted(keyed_result, output_format: str) -> str:
    (review_id, _), result = keyed_result
    probability, label = result.inference["probability"], result.inference["label"]
    if output_format == "jsonl":
        return json.dumps({"Id": review_id, "probability": probability, "label": label})
    return f"{review_id},{probability:.6f},{label}"


def drift_path(output: str) -> str:
    return f"{output}-drift.json"


def build_pipeline(pipeline: beam.Pipeline, config: ScoreConfig, training: dict | None = None) -> None:
    """`training`: the export's profile; without one there is no drift check."""
    validated = pipeline | "ReadReviews" >> ReadReviews(config.input) | "ValidateReviews" >> ValidateReviews()
    inferred = (
        validated.valid
        | "KeyById" >> beam.Map(lambda review: ((review["Id"], review["Score"]), review["Text"]))
        | "RunInference" >> RunInference(KeyedModelHandler(RawTextModelHandler(config.model, config.batch_size)))
    )
    results = inferred | "SplitUnscored" >> beam.ParDo(SplitUnscoredFn()).with_outputs(REJECTED, main="scored")
    _ = (
        (validated.rejected | "RejectedLines" >> beam.Values(), results[REJECTED])
        | "AllRejected" >> beam.Flatten()
        | "WriteRejected" >> beam.io.WriteToText(f"{config.output}-rejected", file_name_suffix=".jsonl")
    )
    suffix = ".jsonl" if config.format == "jsonl" else ".csv"
    _ = (
        results.scored
        | "Format" >> beam.Map(formatted, config.format)
        | "WriteScores" >> beam.io.WriteToText(config.output, file_name_suffix=suffix, num_shards=config.num_shards,
                                               header=CSV_HEADER if config.format == "csv" else None)
    )
    if training is not None:
        _ = (
            inferred
            | "Profile" >> beam.CombineGlobally(ProfileFn())
            | "WriteDrift" >> beam.Map(write_drift, drift_path(config.output), training, f"scored reviews of {config.input}")
        )


def parsed_args(argv=None) -> tuple[ScoreConfig, list[str]]:
    parser = logs.OneLineParser(name="score", prog="python -m pipelines.score", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="export directory (holds saved_model.pb)")
    parser.add_argument("--input", required=True, help="Reviews.csv / finefoods.txt[.gz]: path, glob or gs://")
    parser.add_argument("--output", required=True, help="output prefix: PREFIX-00000-of-0000N.csv")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--batch-size", "--batch_size", type=int, default=256, help="reviews per model call, at most")
    parser.add_argument("--num-shards", "--num_shards", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    args, beam_args = parser.parse_known_args(argv)
    config = ScoreConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ScoreConfig)})
    return config, beam_args_or_exit("score", beam_args, parser)


def usage_problem(config: ScoreConfig) -> str | None:
    """The cheap checks first; loading the export takes a few seconds, once, for
    a one-line error instead of a failed job."""
    if config.batch_size < 1:
        return f"--batch-size must be positive, got {config.batch_size}"
    problem = input_problem(config.input) or output_problem(os.path.dirname(config.output) or ".", "--output's folder")
    if problem:
        return problem
    try:
        loaded_signature(config.model)
    except ExportError as error:
        return str(error)
    return None


def scored_with(config: ScoreConfig, beam_args: list[str]) -> tuple[dict | None, dict]:
    """Runs the scoring pipeline; returns the export's training profile (None: no drift check) and the counters."""
    checked_writable(os.path.dirname(config.output) or ".", "--output's folder")
    if FileSystems.exists(drift_path(config.output)):  # never leave an earlier run's verdict beside these scores
        FileSystems.delete([drift_path(config.output)])
    training = training_profile(config.model)
    if training is None:
        LOG.warning("%s carries no training profile (exported before trainer.task wrote one): no drift check", config.model)
    with new_pipeline(beam_args) as pipeline:
        build_pipeline(pipeline, config, training)
    result = pipeline.result.metrics().query()
    return training, {c.key.metric.name: c.committed for c in result["counters"]}


@one_line_errors("score")
def main(argv=None) -> int:
    config, beam_args = parsed_args(argv)
    logs.configure(config.verbose)
    problem = usage_problem(config)
    if problem:
        raise PipelineError(problem)
    with storage_errors_in_one_line(config.output, "--output"):
        training, counters = scored_with(config, beam_args)
    rejected = sum(v for k, v in counters.items() if k.startswith("rejected_"))
    print(f"scored {counters.get('records', 0) - rejected:,} reviews, rejected {rejected:,}: wrote {config.output}-*")
    if training is not None and FileSystems.exists(drift_path(config.output)):
        with FileSystems.open(drift_path(config.output)) as handle:
            report = json.loads(handle.read())
        (LOG.warning if report["drift"] is not False else LOG.info)("%s (%s)", drift.summary_line(report),
                                                                    drift_path(config.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
