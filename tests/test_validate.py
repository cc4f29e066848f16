import io
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from reviews.records import RawRecord, batches_in_file, records_in_file
from pipelines.validate import ValidateReviewBatches, ValidateReviews
from reviews.validation import NUMBER, Rejection, rejection_line, validated_batch, validated_review
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


@pytest.mark.parametrize("index, value, reason", [
    # What Python's int() takes but an integer field of the schema does not: ASCII digits only.
    (6, " 5", "not_an_integer"), (6, "+4", "not_an_integer"), (0, "1_000", "not_an_integer"),
    (6, "\u0663", "not_an_integer"), (7, "1300000000 ", "not_an_integer"), (0, "\uff11", "not_an_integer"),
    # Time: Unix seconds between 1995-01-01 and 2099-12-31, whatever the clock says.
    (7, "1300000000000", "out_of_range"), (7, "788918399", "out_of_range"), (7, "4102444800", "out_of_range"),
    (7, "0", "out_of_range"),
])
def test_integers_are_ascii_digits_and_time_is_seconds_of_a_review(index, value, reason):
    values = list(GOOD)
    values[index] = value
    with pytest.raises(Rejection) as caught:
        validated_review(record(values))
    assert caught.value.reason == reason, caught.value.detail


@pytest.mark.parametrize("time", ["788918400", "4102444799", "1351209600"])
def test_time_bounds_are_inclusive(time):
    assert validated_review(record(GOOD[:7] + (time,) + GOOD[8:]))["Time"] == int(time)


def test_millisecond_times_are_rejected_column_wise_too():
    # The vectorised fast path applies the same bounds as the per-record rule.
    header = "Id,ProductId,UserId,ProfileName,HelpfulnessNumerator,HelpfulnessDenominator,Score,Time,Summary,Text"
    data = (header + "\n1,B1,U1,N,1,2,5,1300000000,S,good\n2,B2,U2,N,1,2,5,1300000000000,S,good\n").encode()
    batches = list(batches_in_file("ms.csv", io.BytesIO(data)))
    valid, rejected = zip(*(column_wise(batch) for batch in batches))
    assert [row["Id"] for part in valid for _, row in part] == [1]
    assert [(number, reason) for part in rejected for number, reason, _ in part] == [(2, "out_of_range")]


def test_rejection_line_keeps_what_was_read():
    rejection = Rejection("column_count", "3 fields, expected 10")
    line = json.loads(rejection_line(record(("1", "x", "caf\udcc3")), rejection))
    assert line == {"source": "src.csv", "record": 7, "line": 0, "byte": 0, "covers": {"lines": 1, "bytes": 0},
                    "reason": "column_count", "detail": "3 fields, expected 10", "values": ["1", "x", "caf\udcc3"]}


# ---------------------------------------------------------------- column-wise

def per_record(records):
    valid, rejected = [], []
    for record in records:
        try:
            valid.append((record.number, validated_review(record)))
        except Rejection as rejection:
            rejected.append((record.number, rejection.reason, rejection.detail))
    return valid, rejected


def column_wise(batch):
    reviews, rejected = validated_batch(batch)
    rows = reviews.columns.to_pylist()
    return ([(row.pop(NUMBER), row) for row in rows], [(record.number, r.reason, r.detail) for record, r in rejected])


def test_column_wise_validation_is_the_per_record_rule():
    # Plain rows that only int() or str.strip() can judge go through validated_review too.
    lines = ["Id,ProductId,UserId,ProfileName,HelpfulnessNumerator,HelpfulnessDenominator,Score,Time,Summary,Text"]
    lines += [f"{i},B{i},U{i},Name,1,2,{1 + i % 5},{1300000000 + i},S,Text {i}" for i in range(1, 41)]
    lines[3] = "3,B3,U3,Name,1,2,+4,1300000003,S,Text 3"  # int() takes a sign; the schema does not
    lines[4] = "4,B4,U4,Name,1,2,4, 1300000004 ,S,Text 4"  # nor spaces
    lines[5] = "5,B5,U5,Name,1,2,4,1300000005,S,!!!"  # punctuation is text
    lines[6] = "6,B6,U6,Name,1,2,4,1300000006,S,\u00a0\u2003"  # Unicode spaces are blank to strip()
    lines[7] = "7,B7,U7,Name,1,2,7,1300000007,S,Text"  # out of range
    lines[8] = "8,B8,U8,Name,1,2,4,99999999999999999999,S,Text"  # past int64
    lines[9] = "9,B9,U9,,1,2,4,1300000009,S,Text"  # an empty ProfileName is allowed
    lines[10] = "10,B10,,Name,1,2,4,1300000010,S,Text"  # an empty UserId is not
    lines[11] = "011,B11,U11,Name,1,2,4,1300000011,S,Text"  # leading zeros
    data = ("\n".join(lines) + "\n").encode()
    for source, binary in (("plain.csv", data), ("fixture.csv", FIXTURE_CSV.read_bytes())):
        batches = list(batches_in_file(source, io.BytesIO(binary)))
        records = [record for batch in batches for record in batch.records()]
        expected_valid, expected_rejected = per_record(records)
        valid, rejected = zip(*(column_wise(batch) for batch in batches))
        assert sorted(v for part in valid for v in part) == sorted(expected_valid), source
        assert sorted(r for part in rejected for r in part) == sorted(expected_rejected), source
    assert {n for n, *_ in per_record([r for b in batches_in_file("plain.csv", io.BytesIO(data)) for r in b.records()])[1]} == {3, 4, 6, 7, 8, 10}


@pytest.mark.parametrize("read, validate, count", [
    (records_in_file, ValidateReviews, lambda review: 1),  # per record, as pipelines.score reads
    (batches_in_file, ValidateReviewBatches, len),  # column-wise, as pipelines.preprocess reads
])
def test_validation_on_fixture_accounts_for_every_row(read, validate, count):
    with open(FIXTURE_CSV, "rb") as binary:
        elements = list(read(str(FIXTURE_CSV), binary))
    with TestPipeline(runner="FnApiRunner") as p:
        outputs = p | beam.Create(elements) | validate()
        reasons = outputs.rejected | beam.Keys() | beam.combiners.Count.PerElement()
        assert_that(reasons, equal_to(list(FIXTURE_REJECTED.items())), label="reasons")
        valid_count = outputs.valid | beam.Map(count) | beam.CombineGlobally(sum)
        assert_that(valid_count, equal_to([FIXTURE_ROWS - sum(FIXTURE_REJECTED.values())]), label="valid")
