"""Train / val / test assignment.

The default is the notebook's split by time: sort the kept rows by (Time, Id),
the first floor((1-test)·n) are train+val, and of those the first
floor((1-val)·m) are train. A global sort of whole rows does not scale, so only
the (Time, Id) keys are gathered and turned into two boundary keys, which every
row is then compared against. `--split hash` assigns by a stable hash of
ProductId instead, so that all reviews of a product land in one split.
"""
import dataclasses
import hashlib
import math

import apache_beam as beam
from apache_beam.metrics import Metrics

SPLITS = ("train", "val", "test")
_BEYOND_ALL = (math.inf, math.inf)


@dataclasses.dataclass(frozen=True)
class SplitFractions:
    test: float = 0.2
    val: float = 0.2  # fraction of train+val

    def __post_init__(self):
        for name, value in (("test", self.test), ("val", self.val)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"--{name}-fraction must be in [0, 1), got {value}")


def sort_key(review: dict) -> tuple:
    return (review["Time"], review["Id"])


def leading_count(n: int, fraction: float) -> int:
    # The epsilon keeps 5 * 0.8 at 4 despite binary floating point.
    return math.floor(n * fraction + 1e-9)


def time_boundaries(keys: list, fractions: SplitFractions) -> tuple:
    """(first val key, first test key) of the sorted keys."""
    keys = sorted(keys)
    train_val = leading_count(len(keys), 1.0 - fractions.test)
    train = leading_count(train_val, 1.0 - fractions.val)
    first = lambda index: keys[index] if index < len(keys) else _BEYOND_ALL  # noqa: E731
    return first(train), first(train_val)


def split_by_boundaries(review: dict, boundaries: tuple) -> str:
    key = sort_key(review)
    first_val, first_test = boundaries
    if key < first_val:
        return "train"
    return "val" if key < first_test else "test"


def split_by_hash(review: dict, fractions: SplitFractions) -> str:
    digest = hashlib.md5(review["ProductId"].encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    if unit < (1.0 - fractions.test) * (1.0 - fractions.val):
        return "train"
    return "val" if unit < 1.0 - fractions.test else "test"


class SplitFn(beam.DoFn):
    """Sends each review to the output of its split, counting them."""

    def __init__(self, assign):
        self.assign = assign
        self.counters = {split: Metrics.counter("split", split) for split in SPLITS}

    def process(self, review: dict, how):
        split = self.assign(review, how)
        self.counters[split].inc()
        yield beam.pvalue.TaggedOutput(split, review)


class AssignSplit(beam.PTransform):
    """Labelled reviews → one output per split: outputs.train, .val, .test."""

    def __init__(self, method: str, fractions: SplitFractions):
        super().__init__()
        if method not in ("time", "hash"):
            raise ValueError(f"unknown split method {method!r}")
        self.method = method
        self.fractions = fractions

    def expand(self, reviews):
        if self.method == "hash":
            split = beam.ParDo(SplitFn(split_by_hash), self.fractions)
        else:
            boundaries = (
                reviews
                | "SortKeys" >> beam.Map(sort_key)
                | "AllKeys" >> beam.combiners.ToList()
                | "Boundaries" >> beam.Map(time_boundaries, self.fractions)
            )
            split = beam.ParDo(SplitFn(split_by_boundaries), beam.pvalue.AsSingleton(boundaries))
        return reviews | f"{self.method.capitalize()}Split" >> split.with_outputs(*SPLITS)
