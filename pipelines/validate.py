"""Validation of raw records against schemas/reviews.json.

A bad row never stops a run: it leaves on the `rejected` output as a JSON-able
dict saying where it came from, what was read and why it was refused. Every
rejection reason is also a Beam counter.
"""
import json
import re

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.sources import RawRecord
from schemas import COLUMN_NAMES, REVIEW_COLUMNS, Column

REJECTED = "rejected"
# Bytes that were not UTF-8, as left in the text by errors="surrogateescape".
UNDECODABLE = re.compile("[\udc80-\udcff]")


class Rejection(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


INT_COLUMNS = tuple(c for c in REVIEW_COLUMNS if c.type == "int")
STR_COLUMNS = tuple(c for c in REVIEW_COLUMNS if c.type == "str")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parsed_int(column: Column, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise Rejection("not_an_integer", f"{column.name}={raw[:40]!r}") from None
    if not INT64_MIN <= value <= INT64_MAX:  # the TFRecords and Arrow hold int64
        raise Rejection("out_of_range", f"{column.name}={raw[:40]} does not fit int64")
    if (column.min is not None and value < column.min) or (column.max is not None and value > column.max):
        raise Rejection("out_of_range", f"{column.name}={value}")
    return value


def checked_str(column: Column, raw) -> str:
    if raw is None or not raw.strip():
        if column.nullable:
            return raw or ""
        if raw is None or column.name != "Text":
            raise Rejection("missing_field", column.name)
        raise Rejection("empty_text", column.name)
    return raw


def validated_review(record: RawRecord) -> dict:
    """The typed review, or a Rejection saying why not. Runs once per input row,
    so it types only the integer columns and scans the row once for bytes that
    were not UTF-8."""
    if record.problem:
        reason, _, detail = record.problem.partition(": ")
        raise Rejection(reason, detail)
    if len(record.values) != len(REVIEW_COLUMNS):
        raise Rejection("column_count", f"{len(record.values)} fields, expected {len(REVIEW_COLUMNS)}")
    review = dict(zip(COLUMN_NAMES, record.values))
    for column in INT_COLUMNS:
        if review[column.name] is None:
            raise Rejection("missing_field", column.name)
        review[column.name] = parsed_int(column, review[column.name])
    for column in STR_COLUMNS:
        review[column.name] = checked_str(column, review[column.name])
    if UNDECODABLE.search("\x00".join(review[c.name] for c in STR_COLUMNS)):
        column = next(c for c in STR_COLUMNS if UNDECODABLE.search(review[c.name]))
        raise Rejection("undecodable_text", f"{column.name} is not valid UTF-8")
    return review


def rejection_line(record: RawRecord, rejection: Rejection) -> str:
    # Undecodable bytes are written back as \udcXX escapes, nothing dropped.
    return json.dumps(
        {
            "source": record.source,
            "record": record.number,
            "line": record.line,
            "byte": record.byte,
            "covers": {"lines": record.lines, "bytes": record.bytes},
            "reason": rejection.reason,
            "detail": rejection.detail,
            "values": list(record.values),
        },
        ensure_ascii=True,
    )


class ValidateFn(beam.DoFn):
    def process(self, record: RawRecord):
        try:
            yield validated_review(record)
        except Rejection as rejection:
            Metrics.counter("validate", f"rejected_{rejection.reason}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, (rejection.reason, rejection_line(record, rejection)))


class ValidateReviews(beam.PTransform):
    """RawRecord → typed review dicts (main) and (reason, json line) (rejected)."""

    def expand(self, records):
        return records | "Validate" >> beam.ParDo(ValidateFn()).with_outputs(REJECTED, main="valid")
