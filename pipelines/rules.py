"""The notebook's cleaning rules, in the notebook's order.

1. drop Score 3 (neutral); label 1 for Score 4-5, 0 for Score 1-2
2. drop duplicates on (UserId, ProfileName, Time, Text), keeping the row with
   the smallest (ProductId, Id): the notebook sorted by ProductId and kept the
   first, and Amazon posts one review under every variant of a product
3. drop rows whose HelpfulnessNumerator exceeds HelpfulnessDenominator

Every dropped row leaves as its drop reason on the `dropped` output so the
report can account for each input row.
"""
import apache_beam as beam
from apache_beam.metrics import Metrics

DROPPED = "dropped"
NEUTRAL = "neutral_dropped"
DUPLICATE = "duplicates_dropped"
HELPFULNESS = "helpfulness_dropped"


# What the later rules, the split and tf.Transform read of a review. Only these
# travel through the dedup shuffle and on: fewer fields are cheaper to encode
# at every stage boundary (and to shuffle, on Dataflow).
CARRIED = ("Id", "ProductId", "Time", "Text", "label", "HelpfulnessNumerator", "HelpfulnessDenominator")


def dedup_key(review: dict) -> tuple:
    return (review["UserId"], review["ProfileName"], review["Time"], review["Text"])


def keyed_by_content(review: dict) -> tuple[tuple, dict]:
    return dedup_key(review), {field: review[field] for field in CARRIED}


def keep_order(review: dict) -> tuple:
    return (review["ProductId"], review["Id"])


class LabelOrDropNeutralFn(beam.DoFn):
    def __init__(self):
        self.neutral = Metrics.counter("rules", NEUTRAL)

    def process(self, review: dict):
        if review["Score"] == 3:
            self.neutral.inc()
            yield beam.pvalue.TaggedOutput(DROPPED, NEUTRAL)
        else:
            yield {**review, "label": int(review["Score"] > 3)}


class KeepFirstDuplicateFn(beam.DoFn):
    def __init__(self):
        self.duplicates = Metrics.counter("rules", DUPLICATE)

    def process(self, keyed_group):
        _, reviews = keyed_group
        reviews = list(reviews)
        yield min(reviews, key=keep_order)
        for _ in range(len(reviews) - 1):
            self.duplicates.inc()
            yield beam.pvalue.TaggedOutput(DROPPED, DUPLICATE)


class DropUnhelpfulFn(beam.DoFn):
    def __init__(self):
        self.unhelpful = Metrics.counter("rules", HELPFULNESS)

    def process(self, review: dict):
        if review["HelpfulnessNumerator"] > review["HelpfulnessDenominator"]:
            self.unhelpful.inc()
            yield beam.pvalue.TaggedOutput(DROPPED, HELPFULNESS)
        else:
            yield review


class ApplyNotebookRules(beam.PTransform):
    """Typed reviews → (kept labelled reviews, drop reasons)."""

    def expand(self, reviews):
        labelled = reviews | "LabelDropNeutral" >> beam.ParDo(LabelOrDropNeutralFn()).with_outputs(DROPPED, main="kept")
        unique = (
            labelled.kept
            | "KeyByContent" >> beam.Map(keyed_by_content)
            | "GroupDuplicates" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(KeepFirstDuplicateFn()).with_outputs(DROPPED, main="kept")
        )
        helpful = unique.kept | "DropUnhelpful" >> beam.ParDo(DropUnhelpfulFn()).with_outputs(DROPPED, main="kept")
        dropped = (labelled[DROPPED], unique[DROPPED], helpful[DROPPED]) | "AllDrops" >> beam.Flatten()
        return helpful.kept, dropped
