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
from schemas import REVIEW_COLUMNS, Column

REJECTED = "rejected"
# Bytes that were not UTF-8, as left in the text by errors="surrogateescape".
UNDECODABLE = re.compile("[\udc80-\udcff]")


class Rejection(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parsed_value(column: Column, raw):
    if raw is None:
        if column.nullable:
            return ""
        raise Rejection("missing_field", column.name)
    if UNDECODABLE.search(raw):
        raise Rejection("undecodable_text", f"{column.name} is not valid UTF-8")
    if column.type == "str":
        if not column.nullable and not raw.strip():
            raise Rejection("empty_text" if column.name == "Text" else "missing_field", column.name)
        return raw
    try:
        value = int(raw.strip())
    except ValueError:
        raise Rejection("not_an_integer", f"{column.name}={raw[:40]!r}") from None
    if (column.min is not None and value < column.min) or (column.max is not None and value > column.max):
        raise Rejection("out_of_range", f"{column.name}={value}")
    return value


def validated_review(record: RawRecord) -> dict:
    """The typed review, or a Rejection saying why not."""
    if record.problem:
        reason, _, detail = record.problem.partition(": ")
        raise Rejection(reason, detail)
    if len(record.values) != len(REVIEW_COLUMNS):
        raise Rejection("column_count", f"{len(record.values)} fields, expected {len(REVIEW_COLUMNS)}")
    return {column.name: parsed_value(column, raw) for column, raw in zip(REVIEW_COLUMNS, record.values)}


def rejection_line(record: RawRecord, rejection: Rejection) -> str:
    # Undecodable bytes are written back as \udcXX escapes, nothing dropped.
    return json.dumps(
        {
            "source": record.source,
            "record": record.number,
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
