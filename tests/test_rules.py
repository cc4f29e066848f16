import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import rules


def review(id_, product="P1", user="U1", score=5, time=100, text="good", num=0, den=0):
    return {"Id": id_, "ProductId": product, "UserId": user, "ProfileName": "n", "HelpfulnessNumerator": num,
            "HelpfulnessDenominator": den, "Score": score, "Time": time, "Summary": "", "Text": text}


def test_neutral_dropped_and_labels_assigned():
    reviews = [review(1, score=1, text="a"), review(2, score=2, text="b"), review(3, score=3, text="c"),
               review(4, score=4, text="d"), review(5, score=5, text="e")]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, dropped = p | beam.Create(reviews) | rules.ApplyNotebookRules()
        assert_that(kept | beam.Map(lambda r: (r["Id"], r["label"])), equal_to([(1, 0), (2, 0), (4, 1), (5, 1)]), label="kept")
        assert_that(dropped, equal_to([rules.NEUTRAL]), label="dropped")


def test_duplicate_keeps_smallest_product_then_id():
    # Same user, profile, time and text under three products: the notebook keeps
    # the first after sorting by ProductId, whatever the Ids.
    reviews = [review(10, product="B2"), review(20, product="A9"), review(5, product="C1"),
               review(30, product="A9", text="other text")]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, dropped = p | beam.Create(reviews) | rules.ApplyNotebookRules()
        assert_that(kept | beam.Map(lambda r: r["Id"]), equal_to([20, 30]), label="kept")
        assert_that(dropped, equal_to([rules.DUPLICATE, rules.DUPLICATE]), label="dropped")


def test_helpfulness_rule_runs_after_dedup():
    # The duplicate kept (smaller ProductId) is the unhelpful one: both go.
    reviews = [review(1, product="A", num=3, den=1), review(2, product="B"), review(3, text="x", num=1, den=1)]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, dropped = p | beam.Create(reviews) | rules.ApplyNotebookRules()
        assert_that(kept | beam.Map(lambda r: r["Id"]), equal_to([3]), label="kept")
        assert_that(dropped, equal_to([rules.DUPLICATE, rules.HELPFULNESS]), label="dropped")
