"""Raw Amazon reviews → validated, split, tf.Transform-encoded TFRecords.

    python -m pipelines.preprocess --input Reviews.csv --output out/ [Beam options]

Output directory (the contract with trainer/):
    train/ val/ test/   part-*.tfrecord.gz   GZIP tf.Example: tokens, label, review_id, num_words, time
    transform_fn/ transformed_metadata/    the tf.Transform graph and its output schema
    metadata/                              the raw schema (TFTransformOutput.raw_feature_spec())
    rejected/part-*.jsonl                  one JSON line per rejected row, with the reason
    report.json                            the row ledger and data statistics

Local runs use Beam's FnApiRunner (add `--direct_num_workers N
--direct_running_mode multi_processing` for several processes); Beam's default
DirectRunner would first try to download the Prism runner.
"""
import dataclasses
import json
import logging
import os
import sys
import tempfile

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

if __name__ == "__main__":
    # tf.Transform needs Keras 2 (tf_keras) and sets this itself, but only once
    # TensorFlow has already loaded all of Keras 3 (with matplotlib and
    # scikit-learn) at import. Nothing here uses Keras 3: set first, the
    # command starts ~3 s sooner. The transform graph does not change.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, TestOptions
from apache_beam.transforms.window import GlobalWindows
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
from tfx_bsl.public import tfxio

from pipelines import report, transform
from reviews import logs
from reviews.contract import NUM_WORDS
from pipelines.rules import ApplyNotebookRules
from pipelines.runtime import beam_args_or_exit, new_pipeline
from reviews.paths import input_problem, is_within, matched_files, output_problem
from pipelines.sink import WriteExampleShards
from pipelines.sources import ReadReviewBatches
from pipelines.split import REVIEWS_PER_SPLIT, AssignSplit, SplitFractions
from reviews.contract import SPLITS
from pipelines.validate import ValidateReviewBatches
from pipelines import PipelineError
from reviews.errors import one_line_errors
from reviews.locks import exclusive_writer
from reviews.storage import checked_writable, storage_errors_in_one_line

LOG = logging.getLogger(__name__)
# Reviews per Arrow RecordBatch given to tf.Transform: large enough that TF
# calls and per-batch vocabulary counts are few, small enough to stay light.
TFT_BATCH_SIZE = 4000


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    input: str
    output: str
    split: str = "time"
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    vocab_size: int = 20000
    max_length: int = 400
    keep_stopwords: bool = False
    num_shards: int = 8
    overwrite: bool = False
    verbose: bool = False

    @property
    def fractions(self) -> SplitFractions:
        return SplitFractions(test=self.test_fraction, val=self.val_fraction)


def parsed_args(argv=None) -> tuple[PreprocessConfig, list[str]]:
    """Our flags into a PreprocessConfig; everything else is a Beam option."""
    parser = logs.OneLineParser(name="preprocess", prog="python -m pipelines.preprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="Reviews.csv / finefoods.txt[.gz]: path, glob or gs://, comma separated")
    parser.add_argument("--output", required=True, help="output directory (local or gs://)")
    parser.add_argument("--split", choices=("time", "hash"), default="time", help="by (Time, Id) order, or by hash of ProductId")
    parser.add_argument("--test-fraction", "--test_fraction", type=float, default=0.2)
    parser.add_argument("--val-fraction", "--val_fraction", type=float, default=0.2, help="fraction of train+val")
    parser.add_argument("--vocab-size", "--vocab_size", type=int, default=20000, help="ids in total: padding + words + OOV")
    parser.add_argument("--max-length", "--max_length", type=int, default=400, help="ids kept per review (the last ones), front-padded")
    parser.add_argument("--keep-stopwords", "--keep_stopwords", nargs="?", const="true", default="false", type=str.lower,
                        choices=("true", "false"), help="keep the stopwords the notebook drops (best for --model tfidf)")
    parser.add_argument("--num-shards", "--num_shards", type=int, default=8, help="TFRecord files per split")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    parser.add_argument("--overwrite", nargs="?", const="true", default="false", type=str.lower, choices=("true", "false"),
                        help="replace a non-empty --output (a bare --overwrite means true)")
    args, beam_args = parser.parse_known_args(argv)
    args.overwrite = args.overwrite == "true"
    args.keep_stopwords = args.keep_stopwords == "true"
    config = PreprocessConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PreprocessConfig)})
    return config, beam_args_or_exit("preprocess", beam_args, parser)


def option_problem(config: PreprocessConfig) -> str | None:
    """What is wrong with the options' values, before any file is looked at."""
    try:
        config.fractions
        transform.preprocessing_fn_for(config.vocab_size, config.max_length, config.keep_stopwords)
    except ValueError as error:
        return str(error)
    return f"--num-shards must be positive, got {config.num_shards}" if config.num_shards < 1 else None


def checked(config: PreprocessConfig) -> PreprocessConfig:
    """Fails fast, before any worker starts, on input we can already see is wrong."""
    problem = option_problem(config)
    if problem:
        raise PipelineError(problem)
    problem = input_problem(config.input) or output_problem(config.output, "--output")
    if problem:
        raise PipelineError(problem)
    return config


def cleared_output(config: PreprocessConfig) -> None:
    """An empty, writable --output (an earlier output deleted with --overwrite).
    Runs under the output's lock: a second writer never deletes what the first writes."""
    if tf.io.gfile.exists(config.output) and tf.io.gfile.listdir(config.output):
        if not config.overwrite:
            raise PipelineError(f"output directory {config.output!r} is not empty; pass --overwrite to replace it")
        inside = next((path for path in matched_files(config.input) if is_within(path, config.output)), None)
        if inside:
            raise PipelineError(f"--overwrite would delete the input {inside!r}, which lies inside --output {config.output!r}")
        tf.io.gfile.rmtree(config.output)
    checked_writable(config.output, "--output")


# Raw batches carry their split as a tf.Transform passthrough column: one
# TransformDataset then serves all three splits, and its output batches are
# routed back by that column. (Every tf.Transform stage loads the transform
# graph anew: a transform per split cost ~0.4 s of each run apiece.)
SPLIT_COLUMN = "split"
SPLIT_FIELD = pa.field(SPLIT_COLUMN, pa.large_list(pa.int64()))


NO_WORDS_TAG = "no_words"


def raw_adapter_config() -> tfxio.TensorAdapterConfig:
    features = transform.raw_tensor_adapter_config()
    return tfxio.TensorAdapterConfig(features.arrow_schema.append(SPLIT_FIELD), features.tensor_representations)


class DropNoWordsFn(beam.DoFn):
    """Transformed batches (all splits) → (split, the features of its reviews
    with at least one word): what is written and measured. On the `no_words`
    output, a fate per split: how many reviews of the batch cleaned to none
    (emoji, CJK, HTML or digits only). An example of pure padding teaches
    nothing, and serving refuses such text too."""

    def __init__(self):
        self.dropped = Metrics.counter("transform", "no_words_dropped")

    def process(self, transformed: tuple):
        batch = transformed[0]
        split_of_row = report.column_values(batch, SPLIT_COLUMN)
        batch = batch.drop_columns([SPLIT_COLUMN])
        has_words = report.column_values(batch, NUM_WORDS) > 0  # one num_words per review
        # One split a batch as RawFeatureBatchesFn made them, unless tf.Transform ever re-batches.
        for index in np.unique(split_of_row):
            rows = split_of_row == index
            keep = rows & has_words
            kept = batch if keep.all() else batch.filter(pa.array(keep))
            split = SPLITS[index]
            if dropped := int(rows.sum()) - kept.num_rows:
                self.dropped.inc(dropped)
                yield beam.pvalue.TaggedOutput(NO_WORDS_TAG, (report.NO_WORDS_PREFIX + split, dropped))
            if kept.num_rows:
                yield split, kept


class RawFeatureBatchesFn(beam.DoFn):
    """Kept reviews of one split (ReviewColumns) → RecordBatches of `batch_size`
    reviews of the raw features tf.Transform reads, plus the split column.

    A plain buffer of fixed size: Beam's BatchElements, which times every batch
    to tune its size, cost three times as much per review."""

    def __init__(self, batch_size: int, split: str):
        self.batch_size = batch_size
        self.split_index = SPLITS.index(split)

    def start_bundle(self):
        self.buffered, self.buffered_rows = [], 0

    def batch(self, columns: pa.RecordBatch) -> pa.RecordBatch:
        features = transform.raw_record_batch(*(columns.column(name) for name in ("Text", "label", "Id", "Time")))
        split = transform.one_per_row(pa.array(np.full(features.num_rows, self.split_index, np.int64)))
        return features.append_column(SPLIT_FIELD, split)

    def process(self, reviews):
        self.buffered.append(reviews.columns)
        self.buffered_rows += reviews.columns.num_rows
        if self.buffered_rows >= self.batch_size:
            columns = pa.concat_batches(self.buffered)
            full = columns.num_rows - columns.num_rows % self.batch_size
            for start in range(0, full, self.batch_size):
                yield self.batch(columns.slice(start, self.batch_size))
            self.buffered = [columns.slice(full)] if full < columns.num_rows else []
            self.buffered_rows = columns.num_rows - full

    def finish_bundle(self):
        if self.buffered:
            yield GlobalWindows.windowed_value_at_end_of_window(self.batch(pa.concat_batches(self.buffered)))


def build_pipeline(pipeline: beam.Pipeline, config: PreprocessConfig, temp_dir: str | None = None) -> None:
    records = pipeline | "ReadReviews" >> ReadReviewBatches(config.input)
    # Counted here, apart from every fate below: the ledger's two sides.
    # (CombinePerKey on one key: CombineGlobally's default for empty input costs six more transforms.)
    rows_read = (records | "CountRecords" >> beam.Map(lambda batch: (None, len(batch)))
                 | "SumRecords" >> beam.CombinePerKey(sum) | "RowsRead" >> beam.Values())
    validated = records | "ValidateReviews" >> ValidateReviewBatches()
    kept, dropped, sort_keys = validated.valid | "NotebookRules" >> ApplyNotebookRules()
    assigned = kept | "AssignSplit" >> AssignSplit(config.split, config.fractions, sort_keys)

    _ = (
        validated.rejected
        | "RejectedLines" >> beam.Values()
        | "WriteRejected" >> beam.io.WriteToText(os.path.join(config.output, "rejected", "part"), file_name_suffix=".jsonl")
    )

    raw = {split: assigned[split] | f"RawFeatures[{split}]" >> beam.ParDo(RawFeatureBatchesFn(TFT_BATCH_SIZE, split))
           for split in SPLITS}
    raw_adapter = raw_adapter_config()
    preprocessing_fn = transform.preprocessing_fn_for(config.vocab_size, config.max_length, config.keep_stopwords)
    # TF1 graph mode: tracing, saving and loading the transform graph cost ~5 s less a run than
    # tf.function's, for the same ids (the golden outputs hold); the trainer and the export load
    # transform_fn/ through TFTransformOutput either way.
    with tft_beam.Context(temp_dir=temp_dir or os.path.join(config.output, "tmp"), force_tf_compat_v1=True):
        # The vocabulary is learnt from train alone; all three splits reuse it.
        transform_fn = (raw["train"], raw_adapter) | "Analyze[train]" >> tft_beam.AnalyzeDataset(preprocessing_fn)
        all_raw = [raw[split] for split in SPLITS] | "AllRawFeatures" >> beam.Flatten()
        with tft_beam.Context(passthrough_keys={SPLIT_COLUMN}):
            all_transformed, _ = ((all_raw, raw_adapter), transform_fn) | "Transform" >> (
                tft_beam.TransformDataset(output_record_batches=True))
        written = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(config.output)
    transformed = all_transformed | "DropNoWords" >> beam.ParDo(DropNoWordsFn()).with_outputs(NO_WORDS_TAG, main="kept")
    # Known before the examples are: a split's shards are capped at its reviews.
    reviews_per_split = assigned[REVIEWS_PER_SPLIT] | "ReviewsPerSplit" >> beam.CombinePerKey(sum)
    shards = transformed.kept | "WriteExamples" >> WriteExampleShards(config.output, config.num_shards,
                                                                      reviews_per_split=reviews_per_split)
    stats = transformed.kept | "SplitStats" >> beam.CombinePerKey(report.SplitStatsFn())

    # Rows that do not reach a split, by reason; those that do are counted in the split statistics.
    fates = (
        (validated.rejected | "RejectedFate" >> beam.Map(lambda kv: (report.REJECTED_PREFIX + kv[0], 1)),
         dropped, transformed[NO_WORDS_TAG])
        | "AllFates" >> beam.Flatten()
        | "CountFates" >> beam.CombinePerKey(sum)
    )
    _ = (
        pipeline
        | "ReportSeed" >> beam.Create([None])
        | "WriteReport" >> beam.FlatMap(
            report.write_report,
            output_dir=config.output,
            max_length=config.max_length,
            rows_read=beam.pvalue.AsSingleton(rows_read, default_value=0),
            fates=beam.pvalue.AsDict(fates),
            stats=beam.pvalue.AsDict(stats),
            transform_written=beam.pvalue.AsSingleton(written),
            shards_written=beam.pvalue.AsList(shards),
            num_shards=config.num_shards,
            reviews_per_split=beam.pvalue.AsDict(reviews_per_split),
        )
    )


def run(config: PreprocessConfig, beam_args: list[str]) -> dict:
    """Runs the pipeline to completion and returns the report."""
    # The raw schema next to transform_fn/ lets TFTransformOutput(DIR).raw_feature_spec() work.
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata.from_feature_spec(transform.RAW_FEATURE_SPEC),
        os.path.join(config.output, "metadata"),
    )
    LOG.info("preprocess: %s → %s (%s)", config.input, config.output, " ".join(beam_args))
    try:
        with new_pipeline(beam_args) as pipeline:
            build_pipeline(pipeline, config)
    finally:  # tf.Transform's temporary files, also when the run failed (a full disk stays full otherwise)
        if tf.io.gfile.exists(os.path.join(config.output, "tmp")):
            tf.io.gfile.rmtree(os.path.join(config.output, "tmp"))
    with tf.io.gfile.GFile(os.path.join(config.output, "report.json")) as handle:
        return json.load(handle)


def is_dry_run(beam_args: list[str]) -> bool:
    return str(PipelineOptions(beam_args).view_as(TestOptions).dry_run).lower() == "true"


def dry_run_lines(config: PreprocessConfig, beam_args: list[str]) -> list[str]:
    """Builds the job without running it (DataflowRunner --dry_run=True
    --no_auth): nothing is read or written, the graph is checked offline."""
    pipeline = new_pipeline(beam_args)
    # tf.Transform creates its temp dir while the graph is built: keep it local.
    build_pipeline(pipeline, config, temp_dir=tempfile.mkdtemp(prefix="tft-dry-run-"))
    result = pipeline.run()
    job = getattr(result, "job", None)
    if job is None:
        return ["dry run: the runner built the pipeline but returned no job"]
    components = job.proto_pipeline.components
    roots = [components.transforms[t] for t in job.proto_pipeline.root_transform_ids]
    stages = [components.transforms[s].unique_name for root in roots for s in root.subtransforms] or [r.unique_name for r in roots]
    experiments = sorted(PipelineOptions(beam_args).view_as(DebugOptions).experiments or [])
    return [
        f"dry run: {type(pipeline.runner).__name__} job {job.proto.name or '(unnamed)'} with "
        f"{len(components.transforms)} transforms, experiments {experiments}",
        *(f"  stage {name}" for name in stages),
    ]


def capped_shards_lines(shards: dict | None) -> list[str]:
    if not shards or all(shards[split] == shards["requested"] for split in SPLITS):
        return []
    return [f"--num-shards {shards['requested']:,} capped at each split's reviews: "
            + ", ".join(f"{split} {shards[split]:,} file{'s' if shards[split] != 1 else ''}" for split in SPLITS)]


def summary_lines(result: dict, output_dir: str) -> list[str]:
    """What a person reads: rounded figures (report.json keeps full precision)."""
    examples, oov = result["examples"], result["oov_rate"]["train"]
    p999 = result["token_length_percentiles"]["all"]["p99.9"]
    return [
        f"rows read {result['rows_read']:,}: rejected {result['rejected_total']:,} {result['rejected'] or ''}".rstrip(),
        f"dropped: neutral {result['neutral_dropped']:,}, duplicates {result['duplicates_dropped']:,}, "
        f"helpfulness {result['helpfulness_dropped']:,}, no words {sum(result['no_words_dropped'].values()):,}",
        "examples: " + ", ".join(f"{s} {examples[s]:,}" for s in SPLITS) +
        f" (ledger: {result['fates_total']:,} fates for {result['rows_read']:,} rows read, "
        f"{'balanced' if result['balanced'] else 'NOT BALANCED'})",
        f"vocabulary {result['vocabulary_size']:,} ids, words per review p99.9 {'n/a' if p999 is None else f'{p999:.0f}'}, "
        f"train OOV rate {'n/a' if oov is None else f'{oov:.2%}'}",
        f"wrote {output_dir}/{{train,val,test}}/, transform_fn/, report.json",
        *capped_shards_lines(result.get("shards")),
        *(f"warning: split {split} has no examples: trainer.task will refuse this output" for split in SPLITS
          if not examples[split]),
    ]


@one_line_errors("preprocess")
def main(argv=None) -> int:
    config, beam_args = parsed_args(argv)
    logs.configure(config.verbose)
    if is_dry_run(beam_args):
        for line in dry_run_lines(config, beam_args):
            print(line)
        return 0
    checked(config)
    with exclusive_writer(config.output, "pipelines.preprocess"), storage_errors_in_one_line(config.output, "--output"):
        cleared_output(config)
        result = run(config, beam_args)
    for line in summary_lines(result, config.output):
        print(line)
    if not result["balanced"]:
        print(f"preprocess: error: the ledger does not balance: the reader emitted {result['rows_read']:,} records but "
              f"{result['fates_total']:,} fates were counted; some rows were lost between stages "
              f"(the output was written: see {config.output}/report.json)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # With tf.Transform loaded the interpreter was seen to crash while exiting
    # after a Dataflow dry run; the work is done, so leave without tear-down.
    logs.restore_stderr()  # os._exit skips atexit: forward the last lines first
    os._exit(status)
