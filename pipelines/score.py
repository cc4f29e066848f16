"""Batch scoring of raw reviews with an exported model, in Beam.

    python -m pipelines.score --model EXPORT --input PATTERN --output PREFIX [--format csv|jsonl] [Beam options]

Reads with the same readers and validation as pipelines.preprocess (rejected
rows go to PREFIX-rejected-*.jsonl with their reasons, and so do reviews that
clean to no words, with reason no_words and no score), runs the export's
raw-text signature through RunInference in batches, and writes Id, probability
and label. Local (FnApiRunner) by default; Dataflow with the same flags as
preprocess. Beam's own TensorFlow handler needs tensorflow_hub and Keras 2
loading, so a small ModelHandler over tf.saved_model.load is used instead.
"""
import dataclasses
import json
import os
import sys

if __name__ == "__main__":  # before TensorFlow loads: its start-up notices are not our output
    from pipelines.logs import quiet_start

    quiet_start()
from typing import Any, Iterable, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import logs
from pipelines.exports import NO_WORDS, ExportError, loaded_signature, scored
from pipelines.runtime import beam_args_or_exit, input_problem, output_problem
from pipelines.sources import ReadReviews
from pipelines.validate import REJECTED, ValidateReviews

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
        for text, score in zip(batch, scored(model, list(batch))):
            inference = None if score is None else {"probability": score[0], "label": score[1]}
            yield PredictionResult(text, inference)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}


class SplitUnscoredFn(beam.DoFn):
    """Keyed results → scored ones, and on `rejected` a JSON line for each review
    that cleaned to no words (no score is a better answer than the model's prior)."""

    def __init__(self):
        self.no_words = Metrics.counter("score", "rejected_no_words")

    def process(self, keyed_result):
        review_id, result = keyed_result
        if result.inference is not None:
            yield keyed_result
            return
        self.no_words.inc()
        yield beam.pvalue.TaggedOutput(REJECTED, json.dumps(
            {"Id": review_id, "reason": NO_WORDS, "detail": "the text has no words after cleaning: not scored",
             "values": [result.example[:200]]}, ensure_ascii=True))


def formatted(keyed_result, output_format: str) -> str:
    review_id, result = keyed_result
    probability, label = result.inference["probability"], result.inference["label"]
    if output_format == "jsonl":
        return json.dumps({"Id": review_id, "probability": probability, "label": label})
    return f"{review_id},{probability:.6f},{label}"


def build_pipeline(pipeline: beam.Pipeline, config: ScoreConfig) -> None:
    validated = pipeline | "ReadReviews" >> ReadReviews(config.input) | "ValidateReviews" >> ValidateReviews()
    results = (
        validated.valid
        | "KeyById" >> beam.Map(lambda review: (review["Id"], review["Text"]))
        | "RunInference" >> RunInference(KeyedModelHandler(RawTextModelHandler(config.model, config.batch_size)))
        | "SplitUnscored" >> beam.ParDo(SplitUnscoredFn()).with_outputs(REJECTED, main="scored")
    )
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


def main(argv=None) -> int:
    config, beam_args = parsed_args(argv)
    logs.configure(config.verbose)
    problem = usage_problem(config)
    if problem:
        print(f"score: error: {problem}", file=sys.stderr)
        return 2
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        build_pipeline(pipeline, config)
    result = pipeline.result.metrics().query()
    counters = {c.key.metric.name: c.committed for c in result["counters"]}
    rejected = sum(v for k, v in counters.items() if k.startswith("rejected_"))
    print(f"scored {counters.get('records', 0) - rejected:,} reviews, rejected {rejected:,}: wrote {config.output}-*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
