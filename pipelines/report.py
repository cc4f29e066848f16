"""DIR/report.json: where every input row went, and what the examples look like.

Each record the reader emits has exactly one fate: rejected (with a reason),
dropped by a notebook rule, dropped because it cleans to no words, or written to
a split (counted by that split's statistics of the written batches). The ledger
compares two counts taken apart: `rows_read`, counted right after the reader,
and the sum of the fates, counted where each fate happens. A row lost between
stages makes `balanced` false. Per-split statistics
are exact histograms (labels, words per review, token ids) merged by a
CombineFn, so percentiles and the out-of-vocabulary rate need no second pass.
"""
import json
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow_transform as tft

from pipelines import rules
from pipelines.sink import shard_counts
from reviews.contract import LABEL, NUM_WORDS, SPLITS, TOKENS, model_vocabulary_size
from reviews.storage import write_whole
from schemas import REVIEW_COLUMNS

REJECTED_PREFIX = "rejected:"
NO_WORDS = "no_words_dropped"  # per split: cleaned to no words in the transform, after the split
NO_WORDS_PREFIX = "no_words:"  # the fates' key of those, per split
PERCENTILES = (50, 90, 99, 99.9)


def column_values(batch: pa.RecordBatch, name: str) -> np.ndarray:
    column = batch.column(batch.schema.get_field_index(name))
    while pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False)


def added(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    size = max(len(a), len(b))
    return np.pad(a, (0, size - len(a))) + np.pad(b, (0, size - len(b)))


class SplitStatsFn(beam.CombineFn):
    """Histograms of labels, words per review (before truncation) and token ids."""

    KEYS = (LABEL, NUM_WORDS, TOKENS)

    def create_accumulator(self):
        return {key: np.zeros(0, np.int64) for key in self.KEYS}

    def add_input(self, accumulator, batch):
        for key in self.KEYS:
            accumulator[key] = added(accumulator[key], np.bincount(column_values(batch, key)))
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged = {key: added(merged[key], accumulator[key]) for key in self.KEYS}
        return merged

    def extract_output(self, accumulator):
        return accumulator


def percentiles_of(histogram: np.ndarray) -> dict:
    if histogram.sum() == 0:
        return {f"p{p:g}": None for p in PERCENTILES}
    values = np.repeat(np.arange(len(histogram)), histogram)
    return {f"p{p:g}": float(np.percentile(values, p)) for p in PERCENTILES}


def oov_rate(token_histogram: np.ndarray, vocab_size: int) -> float | None:
    oov_id = vocab_size - 1
    words = int(token_histogram[1:].sum())
    if words == 0:
        return None
    return float(token_histogram[oov_id]) / words if oov_id < len(token_histogram) else 0.0


def report_of(rows_read: int, fates: dict, no_words: dict, stats: dict, vocab_size: int, max_length: int) -> dict:
    """rows_read: the reader's count; fates: rejections and rule drops by name;
    no_words: reviews per split that cleaned to no words; stats: of the written batches."""
    rejected = {k[len(REJECTED_PREFIX):]: v for k, v in sorted(fates.items()) if k.startswith(REJECTED_PREFIX)}
    examples = {split: int(stats[split][LABEL].sum()) for split in SPLITS}
    all_lengths = np.zeros(0, np.int64)
    for split in SPLITS:
        all_lengths = added(all_lengths, stats[split][NUM_WORDS])
    report = {
        "rows_read": rows_read,
        "rejected": rejected,
        "rejected_total": sum(rejected.values()),
        rules.NEUTRAL: fates.get(rules.NEUTRAL, 0),
        rules.DUPLICATE: fates.get(rules.DUPLICATE, 0),
        rules.HELPFULNESS: fates.get(rules.HELPFULNESS, 0),
        NO_WORDS: {split: int(no_words.get(split, 0)) for split in SPLITS},
        "examples": examples,
        "labels": {
            split: {"negative": int(added(stats[split][LABEL], np.zeros(2, np.int64))[0]),
                    "positive": int(added(stats[split][LABEL], np.zeros(2, np.int64))[1])}
            for split in SPLITS
        },
        "token_length_percentiles": {
            **{split: percentiles_of(stats[split][NUM_WORDS]) for split in SPLITS},
            "all": percentiles_of(all_lengths),
        },
        "truncated_fraction": (float(all_lengths[max_length + 1:].sum() / all_lengths.sum()) if all_lengths.sum() else None),
        "vocabulary_size": vocab_size,
        "max_length": max_length,
        "oov_rate": {split: oov_rate(stats[split][TOKENS], vocab_size) for split in SPLITS},
    }
    accounted = report["rejected_total"] + sum(report[k] for k in (rules.NEUTRAL, rules.DUPLICATE, rules.HELPFULNESS))
    report["fates_total"] = accounted + sum(report[NO_WORDS].values()) + sum(examples.values())
    report["balanced"] = report["rows_read"] == report["fates_total"]
    return report


def schema_bounds() -> dict:
    """The integer columns' accepted ranges, as validation applied them: a row
    outside one was rejected `out_of_range`. Fixed in schemas/reviews.json, so
    the output never depends on the clock of the machine that made it."""
    return {c.name: {"min": c.min, "max": c.max} for c in REVIEW_COLUMNS if c.type == "int"}


def write_report(_, output_dir: str, max_length: int, rows_read: int, fates: dict, stats: dict, transform_written=None,
                 shards_written: list | None = None, num_shards: int | None = None, reviews_per_split: dict | None = None):
    """Runs after WriteTransformFn, so that the vocabulary it wrote can be
    measured, and after every TFRecord shard is written (both are side inputs):
    report.json is the last file of the output, the sign that a run finished.
    `fates` holds the no-words drops under NO_WORDS_PREFIX + split, beside the
    rejections and the rule drops."""
    shards = shard_counts(num_shards, reviews_per_split) if num_shards else None
    if shards_written is not None and len(set(shards_written)) != (expected := sum(shards.values())):
        raise RuntimeError(f"{len(set(shards_written))} TFRecord shards written, {expected} expected")
    no_words = {key[len(NO_WORDS_PREFIX):]: count for key, count in fates.items() if key.startswith(NO_WORDS_PREFIX)}
    fates = {key: count for key, count in fates.items() if not key.startswith(NO_WORDS_PREFIX)}
    vocab_size = model_vocabulary_size(tft.TFTransformOutput(output_dir))
    empty = SplitStatsFn().create_accumulator()
    report = report_of(rows_read, fates, no_words, {split: stats.get(split, empty) for split in SPLITS}, vocab_size, max_length)
    report["bounds"] = schema_bounds()
    if shards:
        report["shards"] = {"requested": num_shards, **shards}
    write_whole(os.path.join(output_dir, "report.json"), json.dumps(report, indent=2))  # whole or not at all
    yield report
