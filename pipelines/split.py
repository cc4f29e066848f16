"""Train / val / test assignment.

The default is the notebook's split by time: sort the kept rows by (Time, Id),
the first floor((1-test)·n) are train+val, and of those the first
floor((1-val)·m) are train. A global sort of whole rows does not scale, so only
the (Time, Id) keys are gathered and turned into two boundary keys, which every
row is then compared against. `--split hash` assigns by a stable hash of
ProductId instead, so that all reviews of a product land in one split. Reviews
travel as column batches (validate.ReviewColumns); the per-review functions
below are the rule, the column-wise ones apply it to a batch.
"""
import dataclasses
import hashlib
import math

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from reviews.contract import SPLITS
from reviews.validation import ReviewColumns

_BEYOND_ALL = (math.inf, math.inf)


@dataclasses.dataclass(frozen=True)
class SplitFractions:
    test: float = 0.2
    val: float = 0.2  # fraction of train+val

    def __post_init__(self):
        for name, value in (("test", self.test), ("val", self.val)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"--{name}-fraction must be in [0, 1), got {value}")


def leading_count(n: int, fraction: float) -> int:
    # The epsilon keeps 5 * 0.8 at 4 despite binary floating point.
    return math.floor(n * fraction + 1e-9)


def time_boundaries(keys: list, fractions: SplitFractions) -> tuple:
    """(first val key, first test key) of the sorted (Time, Id) keys."""
    times, ids = (np.array([key[i] for key in keys], np.int64) for i in (0, 1))
    return time_boundaries_of(times, ids, fractions)


def time_boundaries_of(times: np.ndarray, ids: np.ndarray, fractions: SplitFractions) -> tuple:
    order = np.lexsort((ids, times))
    train_val = leading_count(len(order), 1.0 - fractions.test)
    train = leading_count(train_val, 1.0 - fractions.val)
    first = lambda index: (int(times[order[index]]), int(ids[order[index]])) if index < len(order) else _BEYOND_ALL  # noqa: E731
    return first(train), first(train_val)


def split_by_boundaries(review: dict, boundaries: tuple) -> str:
    return SPLITS[int(boundary_splits(np.array([review["Time"]]), np.array([review["Id"]]), boundaries)[0])]


def before(times: np.ndarray, ids: np.ndarray, key: tuple) -> np.ndarray:
    """Which (Time, Id) keys sort before `key`."""
    if key == _BEYOND_ALL:
        return np.ones(len(times), bool)
    return (times < key[0]) | ((times == key[0]) & (ids < key[1]))


def boundary_splits(times: np.ndarray, ids: np.ndarray, boundaries: tuple) -> np.ndarray:
    """Split index (into SPLITS) of each key."""
    first_val, first_test = boundaries
    return np.where(before(times, ids, first_val), 0, np.where(before(times, ids, first_test), 1, 2))


def split_by_hash(review: dict, fractions: SplitFractions) -> str:
    digest = hashlib.md5(review["ProductId"].encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    if unit < (1.0 - fractions.test) * (1.0 - fractions.val):
        return "train"
    return "val" if unit < 1.0 - fractions.test else "test"


def hash_splits(products: pa.Array, fractions: SplitFractions) -> np.ndarray:
    """Split index of each review, one hash per distinct product."""
    encoded = products.dictionary_encode()
    per_product = np.array([SPLITS.index(split_by_hash({"ProductId": p}, fractions))
                            for p in encoded.dictionary.to_pylist()], np.int64)
    return per_product[encoded.indices.to_numpy()] if len(per_product) else np.zeros(0, np.int64)


def sort_keys(reviews: ReviewColumns) -> tuple[np.ndarray, np.ndarray]:
    return reviews.columns.column("Time").to_numpy(), reviews.columns.column("Id").to_numpy()


class ConcatKeysFn(beam.CombineFn):
    """All (Time, Id) keys as two arrays: 16 bytes a review."""

    def create_accumulator(self):
        return []

    def add_input(self, accumulator, keys):
        accumulator.append(keys)
        return accumulator

    def merge_accumulators(self, accumulators):
        return [keys for accumulator in accumulators for keys in accumulator]

    def extract_output(self, accumulator):
        if not accumulator:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return tuple(np.concatenate([keys[i] for keys in accumulator]) for i in (0, 1))


# AssignSplit's output of (split, reviews) pairs, one per batch and split: what a
# later stage needs to know of a split's size before its examples exist. (A count
# taken by another consumer of the splits' reviews made the runner keep them all:
# 12 % more peak memory at full size.)
REVIEWS_PER_SPLIT = "reviews_per_split"


class SplitFn(beam.DoFn):
    """Sends each batch's reviews to the output of their split, counting them."""

    def __init__(self, method: str, fractions: SplitFractions):
        self.method = method
        self.fractions = fractions
        self.counters = {split: Metrics.counter("split", split) for split in SPLITS}

    def process(self, reviews: ReviewColumns, boundaries=None):
        if self.method == "hash":
            index = hash_splits(reviews.columns.column("ProductId"), self.fractions)
        else:
            index = boundary_splits(*sort_keys(reviews), boundaries)
        for i, split in enumerate(SPLITS):
            mask = index == i
            if mask.any():
                self.counters[split].inc(int(mask.sum()))
                yield beam.pvalue.TaggedOutput(split, ReviewColumns(reviews.source, reviews.columns.filter(pa.array(mask))))
                yield beam.pvalue.TaggedOutput(REVIEWS_PER_SPLIT, (split, int(mask.sum())))


class AssignSplit(beam.PTransform):
    """Labelled ReviewColumns → one output per split: outputs.train, .val, .test,
    and outputs.reviews_per_split: (split, reviews) pairs.

    `sort_keys`, (Time, Id) key arrays of exactly these reviews (as the rules
    give them), spares the time split a pass over the reviews to find them."""

    def __init__(self, method: str, fractions: SplitFractions, sort_keys=None):
        super().__init__()
        if method not in ("time", "hash"):
            raise ValueError(f"unknown split method {method!r}")
        self.method = method
        self.fractions = fractions
        self.sort_keys = sort_keys

    def expand(self, reviews):
        split = SplitFn(self.method, self.fractions)
        if self.method == "hash":
            assigned = beam.ParDo(split)
        else:
            keys = self.sort_keys if self.sort_keys is not None else reviews | "SortKeys" >> beam.Map(sort_keys)
            boundaries = (
                keys
                | "AllKeys" >> beam.CombineGlobally(ConcatKeysFn())
                | "Boundaries" >> beam.Map(lambda keys, fractions: time_boundaries_of(*keys, fractions), self.fractions)
            )
            assigned = beam.ParDo(split, beam.pvalue.AsSingleton(boundaries))
        return reviews | f"{self.method.capitalize()}Split" >> assigned.with_outputs(*SPLITS, REVIEWS_PER_SPLIT)
