import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import rules
from reviews.validation import NUMBER, ReviewColumns, typed_rows


def review(id_, product="P1", user="U1", score=5, time=100, text="good", num=0, den=0):
    return {"Id": id_, "ProductId": product, "UserId": user, "ProfileName": "n", "HelpfulnessNumerator": num,
            "HelpfulnessDenominator": den, "Score": score, "Time": time, "Summary": "", "Text": text}


def batches(reviews, per_batch=2, source="a.csv"):
    """Reviews as the validation hands them on: column batches of one source, record numbers from 1."""
    rows = [{**r, NUMBER: n} for n, r in enumerate(reviews, start=1)]
    return [ReviewColumns(source, typed_rows(rows[i:i + per_batch])) for i in range(0, len(rows), per_batch)]


def run_rules(p, reviews, **kwargs):
    kept, dropped, sort_keys = p | beam.Create(batches(reviews, **kwargs)) | rules.ApplyNotebookRules()
    kept_ids = kept | "KeptIds" >> beam.FlatMap(lambda b: b.columns.column("Id").to_pylist())
    labels = kept | "Labels" >> beam.FlatMap(lambda b: zip(b.columns.column("Id").to_pylist(), b.columns.column("label").to_pylist()))
    drops = dropped | "SumDrops" >> beam.CombinePerKey(sum)
    keys = sort_keys | "Keys" >> beam.FlatMap(lambda k: zip(k[0].tolist(), k[1].tolist()))
    return kept_ids, labels, drops, keys


def test_neutral_dropped_and_labels_assigned():
    reviews = [review(1, score=1, text="a"), review(2, score=2, text="b"), review(3, score=3, text="c"),
               review(4, score=4, text="d"), review(5, score=5, text="e")]
    with TestPipeline(runner="FnApiRunner") as p:
        _, labels, drops, _ = run_rules(p, reviews)
        assert_that(labels, equal_to([(1, 0), (2, 0), (4, 1), (5, 1)]), label="kept")
        assert_that(drops, equal_to([(rules.NEUTRAL, 1)]), label="dropped")


def test_duplicate_keeps_smallest_product_then_id_across_batches():
    # Same user, profile, time and text under three products, in different
    # batches: the notebook keeps the first after sorting by ProductId.
    reviews = [review(10, product="B2"), review(20, product="A9"), review(5, product="C1"),
               review(30, product="A9", text="other text")]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, _, drops, keys = run_rules(p, reviews, per_batch=1)
        assert_that(kept, equal_to([20, 30]), label="kept")
        assert_that(drops, equal_to([(rules.DUPLICATE, 2)]), label="dropped")
        assert_that(keys, equal_to([(100, 20), (100, 30)]), label="sort keys")


def test_each_field_of_the_key_tells_reviews_apart():
    # One field differs in each: none is a duplicate of the first.
    base = review(1)
    reviews = [base, {**review(2), "UserId": "U2"}, {**review(3), "ProfileName": "m"}, review(4, time=101),
               review(5, text="good!"), review(6, text="doog")]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, _, drops, _ = run_rules(p, reviews)
        assert_that(kept, equal_to([1, 2, 3, 4, 5, 6]), label="kept")
        assert_that(drops, equal_to([]), label="dropped")


def test_helpfulness_rule_runs_after_dedup():
    # The duplicate kept (smaller ProductId) is the unhelpful one: both go.
    reviews = [review(1, product="A", num=3, den=1), review(2, product="B"), review(3, text="x", num=1, den=1)]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, _, drops, keys = run_rules(p, reviews)
        assert_that(kept, equal_to([3]), label="kept")
        assert_that(drops, equal_to([(rules.DUPLICATE, 1), (rules.HELPFULNESS, 1)]), label="dropped")
        assert_that(keys, equal_to([(100, 3)]), label="sort keys")


def test_the_same_record_number_in_two_files_is_two_rows():
    # Identity is (source, record number): a duplicate in one file drops nothing in the other.
    with TestPipeline(runner="FnApiRunner") as p:
        first = batches([review(1), review(2, product="P0")], source="a.csv")  # 2 duplicates 1
        second = batches([review(3, text="x"), review(4, text="y")], source="b.csv")
        kept, dropped, _ = p | beam.Create(first + second) | rules.ApplyNotebookRules()
        assert_that(kept | beam.FlatMap(lambda b: [(b.source, i) for i in b.columns.column("Id").to_pylist()]),
                    equal_to([("a.csv", 2), ("b.csv", 3), ("b.csv", 4)]))


def test_first_of_each_key_marks_one_row_per_group():
    keys = pa.table({"UserId": ["u", "u", "v", "u"], "ProfileName": ["n"] * 4, "Time": [1, 1, 1, 1],
                     "text_length": [3, 3, 3, 3], "text_hash": np.array([7, 7, 7, 8], np.uint64),
                     "ProductId": ["B", "A", "A", "A"], "Id": [1, 2, 3, 4], "source": ["s"] * 4, NUMBER: [1, 2, 3, 4],
                     "unhelpful": [False] * 4})
    ordered = rules.first_of_each_key(keys)
    firsts = sorted(i for i, first in zip(ordered.column("Id").to_pylist(), ordered.column("first").to_pylist()) if first)
    assert firsts == [2, 3, 4]  # (u, 7): Id 2 (ProductId A) wins over Id 1
