import collections

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.split import (AssignSplit, SplitFractions, boundary_splits, hash_splits, split_by_boundaries, split_by_hash,
                             time_boundaries)
from tests.test_rules import batches, review


def test_notebook_split_sizes_on_the_full_dataset_count():
    # 364,171 kept rows → 233,068 / 58,268 / 72,835, as in the notebook.
    keys = [(t // 3, t) for t in range(364_171)]
    boundaries = time_boundaries(keys, SplitFractions())
    counts = collections.Counter(split_by_boundaries({"Time": t, "Id": i}, boundaries) for t, i in keys)
    assert counts == {"train": 233_068, "val": 58_268, "test": 72_835}


def test_time_split_is_by_time_then_id():
    reviews = [review(i, time=t) for i, t in enumerate([50, 10, 40, 10, 30, 20, 60, 70, 80, 90], 1)]
    with TestPipeline(runner="FnApiRunner") as p:
        assigned = p | beam.Create(batches(reviews, per_batch=3)) | AssignSplit("time", SplitFractions(test=0.2, val=0.25))
        # sorted (Time, Id): (10,2) (10,4) (20,6) (30,5) (40,3) (50,1) | (60,7) (70,8) | (80,9) (90,10)
        ids = lambda split: assigned[split] | f"Ids[{split}]" >> beam.FlatMap(lambda b: b.columns.column("Id").to_pylist())  # noqa: E731
        assert_that(ids("train"), equal_to([2, 4, 6, 5, 3, 1]), label="train")
        assert_that(ids("val"), equal_to([7, 8]), label="val")
        assert_that(ids("test"), equal_to([9, 10]), label="test")


def test_hash_split_keeps_a_product_together_and_is_deterministic():
    fractions = SplitFractions()
    products = [f"B{n:09d}" for n in range(4000)]
    splits = [split_by_hash({"ProductId": p}, fractions) for p in products]
    assert splits == [split_by_hash({"ProductId": p}, fractions) for p in products]
    counts = collections.Counter(splits)
    assert abs(counts["test"] / 4000 - 0.2) < 0.03 and abs(counts["val"] / 4000 - 0.16) < 0.03


@pytest.mark.parametrize("test, val", [(1.0, 0.2), (-0.1, 0.2), (0.2, 1.5)])
def test_bad_fractions_are_refused(test, val):
    with pytest.raises(ValueError):
        SplitFractions(test=test, val=val)


def test_column_wise_splits_agree_with_the_per_review_rule():
    rng = np.random.default_rng(0)
    times, ids = rng.integers(0, 50, 500), rng.permutation(500) + 1
    boundaries = time_boundaries(list(zip(times.tolist(), ids.tolist())), SplitFractions())
    per_review = [split_by_boundaries({"Time": t, "Id": i}, boundaries) for t, i in zip(times.tolist(), ids.tolist())]
    assert [("train", "val", "test")[s] for s in boundary_splits(times, ids, boundaries)] == per_review
    products = [f"B{n % 97:09d}" for n in range(500)]
    assert [("train", "val", "test")[s] for s in hash_splits(pa.array(products), SplitFractions())] == \
        [split_by_hash({"ProductId": p}, SplitFractions()) for p in products]


def test_time_split_of_nothing_and_of_one_review():
    assert time_boundaries([], SplitFractions()) == ((np.inf, np.inf), (np.inf, np.inf))
    first_val, first_test = time_boundaries([(5, 1)], SplitFractions())
    assert boundary_splits(np.array([5]), np.array([1]), (first_val, first_test)).tolist() == [2]  # floor(0.8) = 0 train+val
