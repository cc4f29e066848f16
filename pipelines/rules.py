"""The notebook's cleaning rules, in the notebook's order.

1. drop Score 3 (neutral); label 1 for Score 4-5, 0 for Score 1-2
2. drop duplicates on (UserId, ProfileName, Time, Text), keeping the row with
   the smallest (ProductId, Id): the notebook sorted by ProductId and kept the
   first, and Amazon posts one review under every variant of a product
3. drop rows whose HelpfulnessNumerator exceeds HelpfulnessDenominator

Reviews travel as column batches (validate.ReviewColumns). Only compact keys go
through the dedup shuffle: UserId, ProfileName, Time, the text's length and a
64-bit hash of the text (SipHash, pandas' hash_array), with each row's
(ProductId, Id) and identity (source, record number). Two reviews are taken for
duplicates when all of those agree; distinct texts of one user at one time
that hash alike, the only way to be wrong, come about once in 2^64 such pairs.
Each bucket of keys names the rows to drop; the batches are then filtered
against that list. Every dropped row is counted where it is dropped, on the
`dropped` output as (reason, count) pairs, so the report can account for each
input row.
"""
import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from reviews.validation import NUMBER, ReviewColumns

DROPPED = "dropped"
NEUTRAL = "neutral_dropped"
DUPLICATE = "duplicates_dropped"
HELPFULNESS = "helpfulness_dropped"
LABEL = "label"

# What the later rules, the split and tf.Transform read of a review: fewer
# columns are cheaper at every stage boundary.
CARRIED = ("Id", "ProductId", "Time", "Text", LABEL, "HelpfulnessNumerator", "HelpfulnessDenominator", NUMBER)
KEPT = ("Id", "ProductId", "Time", "Text", LABEL, NUMBER)
# Dedup keys are spread over this many buckets (by the text's hash): the
# shuffle's parallelism on Dataflow.
DEDUP_BUCKETS = 16
DEDUP_KEY = ("UserId", "ProfileName", "Time", "text_length", "text_hash")
KEEP_ORDER = ("ProductId", "Id", "source", NUMBER)  # the smallest is kept; source and number only break exact ties


def selected(columns: pa.RecordBatch, names) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([columns.column(name) for name in names], names=list(names))


def filtered(reviews: ReviewColumns, keep: np.ndarray, names) -> ReviewColumns:
    columns = selected(reviews.columns, names)
    return ReviewColumns(reviews.source, columns if keep.all() else columns.filter(pa.array(keep)))


class LabelOrDropNeutralFn(beam.DoFn):
    def __init__(self):
        self.neutral = Metrics.counter("rules", NEUTRAL)

    def process(self, reviews: ReviewColumns):
        score = reviews.columns.column("Score").to_numpy()
        neutral = int((score == 3).sum())
        if neutral:
            self.neutral.inc(neutral)
            yield beam.pvalue.TaggedOutput(DROPPED, (NEUTRAL, neutral))
        labelled = reviews.columns.append_column(LABEL, pa.array((score > 3).astype(np.int64)))
        kept = filtered(ReviewColumns(reviews.source, labelled), score != 3, (*CARRIED, "UserId", "ProfileName"))
        if len(kept):
            yield kept


def text_hashes(text: pa.Array) -> np.ndarray:
    return pd.util.hash_array(pc.cast(text, pa.large_binary()).to_numpy(zero_copy_only=False))


def dedup_keys(reviews: ReviewColumns) -> pa.Table:
    """The compact row of each review for the dedup shuffle (its source travels
    once per batch, beside it)."""
    columns = reviews.columns
    unhelpful = pc.greater(columns.column("HelpfulnessNumerator"), columns.column("HelpfulnessDenominator"))
    return pa.table({
        "UserId": columns.column("UserId"),
        "ProfileName": columns.column("ProfileName"),
        "Time": columns.column("Time"),
        "text_length": pc.binary_length(columns.column("Text")),
        "text_hash": text_hashes(columns.column("Text")),
        "ProductId": columns.column("ProductId"),
        "Id": columns.column("Id"),
        NUMBER: columns.column(NUMBER),
        "unhelpful": unhelpful,
    })


def bucketed_keys(reviews: ReviewColumns):
    """(bucket, (source, keys)) for each bucket this batch has rows of."""
    keys = dedup_keys(reviews)
    buckets = keys.column("text_hash").to_numpy() % DEDUP_BUCKETS
    for bucket in np.unique(buckets):
        yield int(bucket), (reviews.source, keys.filter(pa.array(buckets == bucket)))


def with_source(source: str, keys: pa.Table) -> pa.Table:
    return keys.append_column("source", pa.array([source] * keys.num_rows, pa.large_string()))


def first_of_each_key(keys: pa.Table) -> pa.Table:
    """Keys sorted so that each duplicate group starts with the row it keeps,
    plus a `first` column marking those rows."""
    ordered = keys.sort_by([(name, "ascending") for name in (*DEDUP_KEY, *KEEP_ORDER)])
    first = np.ones(ordered.num_rows, bool)
    if ordered.num_rows > 1:
        same = np.ones(ordered.num_rows - 1, bool)
        for name in DEDUP_KEY:
            column = ordered.column(name)
            same &= pc.equal(column.slice(1), column.slice(0, ordered.num_rows - 1)).to_numpy(zero_copy_only=False)
        first[1:] = ~same
    return ordered.append_column("first", pa.array(first))


SORT_KEYS = "sort_keys"


class FindDuplicatesFn(beam.DoFn):
    """A bucket of keys → (source, record numbers) of the rows its duplicates
    drop; and on `sort_keys`, the (Time, Id) keys of the rows that pass every
    rule, from which the time split finds its boundaries without a pass over
    the reviews themselves."""

    def process(self, bucket_keys: tuple):
        _, parts = bucket_keys
        ordered = first_of_each_key(pa.concat_tables([with_source(source, keys) for source, keys in parts]))
        first = ordered.column("first").to_numpy(zero_copy_only=False)
        kept = first & ~ordered.column("unhelpful").to_numpy(zero_copy_only=False)
        yield beam.pvalue.TaggedOutput(SORT_KEYS, (ordered.column("Time").to_numpy()[kept], ordered.column("Id").to_numpy()[kept]))
        sources = ordered.column("source").to_numpy(zero_copy_only=False)[~first]
        numbers = ordered.column(NUMBER).to_numpy()[~first]
        for source in np.unique(sources):
            yield str(source), numbers[sources == source]


class MergeLosersFn(beam.CombineFn):
    """{source: sorted record numbers to drop}."""

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, element):
        source, numbers = element
        accumulator.setdefault(source, []).append(numbers)
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = {}
        for accumulator in accumulators:
            for source, parts in accumulator.items():
                merged.setdefault(source, []).extend(parts)
        return merged

    def extract_output(self, accumulator):
        return {source: np.sort(np.concatenate(parts)) for source, parts in accumulator.items()}


class DropDuplicatesAndUnhelpfulFn(beam.DoFn):
    """Drops the batch's rows on the losers list, then the unhelpful ones."""

    def __init__(self):
        self.duplicates = Metrics.counter("rules", DUPLICATE)
        self.unhelpful = Metrics.counter("rules", HELPFULNESS)

    def process(self, reviews: ReviewColumns, losers: dict):
        columns = reviews.columns
        dropped = losers.get(reviews.source)
        duplicate = (np.isin(columns.column(NUMBER).to_numpy(), dropped) if dropped is not None
                     else np.zeros(columns.num_rows, bool))
        unhelpful = ~duplicate & pc.greater(columns.column("HelpfulnessNumerator"),
                                            columns.column("HelpfulnessDenominator")).to_numpy(zero_copy_only=False)
        for reason, mask, counter in ((DUPLICATE, duplicate, self.duplicates), (HELPFULNESS, unhelpful, self.unhelpful)):
            if mask.any():
                counter.inc(int(mask.sum()))
                yield beam.pvalue.TaggedOutput(DROPPED, (reason, int(mask.sum())))
        keep = ~(duplicate | unhelpful)
        if keep.any():
            yield filtered(reviews, keep, KEPT)


class ApplyNotebookRules(beam.PTransform):
    """ReviewColumns → (kept labelled ReviewColumns, (drop reason, count) pairs,
    (Time, Id) key arrays of the kept reviews)."""

    def expand(self, reviews):
        labelled = reviews | "LabelDropNeutral" >> beam.ParDo(LabelOrDropNeutralFn()).with_outputs(DROPPED, main="kept")
        found = (
            labelled.kept
            | "DedupKeys" >> beam.FlatMap(bucketed_keys)
            | "GroupKeys" >> beam.GroupByKey()
            | "FindDuplicates" >> beam.ParDo(FindDuplicatesFn()).with_outputs(SORT_KEYS, main="losers")
        )
        losers = found.losers | "MergeLosers" >> beam.CombineGlobally(MergeLosersFn())
        kept = labelled.kept | "DropDuplicatesUnhelpful" >> beam.ParDo(
            DropDuplicatesAndUnhelpfulFn(), beam.pvalue.AsSingleton(losers)).with_outputs(DROPPED, main="kept")
        dropped = (labelled[DROPPED], kept[DROPPED]) | "AllDrops" >> beam.Flatten()
        return kept.kept, dropped, found[SORT_KEYS]
