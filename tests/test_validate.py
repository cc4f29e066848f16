import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.sources import RawRecord, records_in_file
from pipelines.validate import Rejection, ValidateReviews, rejection_line, validated_review
from tests.conftest import FIXTURE_CSV, FIXTURE_REJECTED, FIXTURE_ROWS

GOOD = ("1", "B001", "U1", "Ann", "1", "2", "5", "1300000000", "Nice", "Tasty <br />snack")


def record(values, problem=None):
    return RawRecord("src.csv", 7, tuple(values), problem)


def test_valid_row_is_typed():
    review = validated_review(record(GOOD))
    assert review["Id"] == 1 and review["Score"] == 5 and review["Time"] == 1300000000
    assert review["Text"] == "Tasty <br />snack"


@pytest.mark.parametrize(
    "index, value, reason",
    [(6, "5.5", "not_an_integer"), (6, "0", "out_of_range"), (6, "6", "out_of_range"), (0, "x", "not_an_integer"),
     (4, "-1", "out_of_range"), (9, "   ", "empty_text"), (9, "bad \udcff byte", "undecodable_text"),
     (2, None, "missing_field")],
)
def test_bad_values_are_rejected_with_a_reason(index, value, reason):
    values = list(GOOD)
    values[index] = value
    with pytest.raises(Rejection) as caught:
        validated_review(record(values))
    assert caught.value.reason == reason


def test_rejection_line_keeps_what_was_read():
    rejection = Rejection("column_count", "3 fields, expected 10")
    line = json.loads(rejection_line(record(("1", "x", "caf\udcc3")), rejection))
    assert line == {"source": "src.csv", "record": 7, "line": 0, "byte": 0, "covers": {"lines": 1, "bytes": 0},
                    "reason": "column_count", "detail": "3 fields, expected 10", "values": ["1", "x", "caf\udcc3"]}


def test_validate_reviews_on_fixture_accounts_for_every_row():
    with open(FIXTURE_CSV, "rb") as binary:
        records = list(records_in_file(str(FIXTURE_CSV), binary))
    with TestPipeline(runner="FnApiRunner") as p:
        outputs = p | beam.Create(records) | ValidateReviews()
        reasons = outputs.rejected | beam.Keys() | beam.combiners.Count.PerElement()
        assert_that(reasons, equal_to(list(FIXTURE_REJECTED.items())), label="reasons")
        valid_count = outputs.valid | beam.combiners.Count.Globally()
        assert_that(valid_count, equal_to([FIXTURE_ROWS - sum(FIXTURE_REJECTED.values())]), label="valid")
