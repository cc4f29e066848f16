"""Validation of raw records against schemas/reviews.json.

A bad row never stops a run: it is rejected with a JSON line saying where it
came from, what was read and why it was refused (pipelines/validate.py sends
it to the `rejected` output and counts each reason).

`validated_review` is the rule, one record at a time. `validated_batch`
applies it to ReviewBatches column-wise: a vectorised test passes the plain
rows whose every value the rule surely accepts (digits only, a visible ASCII
character in every required text), and every other row, plain or odd, goes
through `validated_review` itself, so the rule has one definition.
"""
import dataclasses
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reviews.records import RawRecord, ReviewBatch
from schemas import COLUMN_NAMES, REVIEW_COLUMNS, Column

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


# What an integer field holds: ASCII digits, a minus sign at most. Python's int()
# also takes " 5", "+4", "1_000" and other scripts' digits ("٣"); the schema does not.
ASCII_INT = re.compile(r"-?[0-9]+")


def parsed_int(column: Column, raw: str) -> int:
    if not ASCII_INT.fullmatch(raw):
        raise Rejection("not_an_integer", f"{column.name}={raw[:40]!r}")
    value = int(raw)
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


# ---------------------------------------------------------------- column-wise

NUMBER = "_number"  # the record number within its source: a row's identity with the source
TYPED_SCHEMA = pa.schema([pa.field(c.name, pa.int64() if c.type == "int" else pa.large_string()) for c in REVIEW_COLUMNS]
                         + [pa.field(NUMBER, pa.int64())])
# At most 18 digits: surely an int64. Anything else is left to parsed_int.
PLAIN_INT = r"^[0-9]{1,18}$"
# A visible ASCII character: surely not blank to str.strip().
VISIBLE = r"[!-~]"


@dataclasses.dataclass(frozen=True)
class ReviewColumns:
    """Valid reviews of one source: TYPED_SCHEMA columns."""

    source: str
    columns: pa.RecordBatch

    def __len__(self) -> int:
        return self.columns.num_rows


def surely_valid(plain: pa.RecordBatch) -> tuple[np.ndarray, dict]:
    """(rows the rule surely accepts, their int columns typed: zero elsewhere)."""
    ok = np.ones(plain.num_rows, bool)
    ints = {}
    for column in INT_COLUMNS:
        values = plain.column(column.name)
        digits = pc.match_substring_regex(values, PLAIN_INT).to_numpy(zero_copy_only=False)
        typed = pc.cast(pc.if_else(pa.array(digits), values, "0"), pa.int64()).to_numpy()
        ok &= digits
        if column.min is not None:
            ok &= typed >= column.min
        if column.max is not None:
            ok &= typed <= column.max
        ints[column.name] = typed
    for column in STR_COLUMNS:
        if not column.nullable:
            ok &= pc.match_substring_regex(plain.column(column.name), VISIBLE).to_numpy(zero_copy_only=False)
    return ok, ints


def typed_rows(reviews: list[dict]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(reviews, schema=TYPED_SCHEMA)


def validated_batch(batch: ReviewBatch) -> tuple[ReviewColumns, list[tuple[RawRecord, Rejection]]]:
    """The batch's valid reviews, typed, and its rejected records with why."""
    parts, others = [], list(batch.odd)
    if batch.plain is not None and batch.plain.num_rows:
        ok, ints = surely_valid(batch.plain)
        keep = pa.array(ok)
        columns = [pa.array(ints[c.name][ok]) if c.type == "int" else batch.plain.column(c.name).filter(keep)
                   for c in REVIEW_COLUMNS] + [batch.plain.column(NUMBER).filter(keep)]
        parts.append(pa.RecordBatch.from_arrays(columns, schema=TYPED_SCHEMA))
        others += [batch.plain_record(int(i)) for i in np.flatnonzero(~ok)]
    valid, rejected = [], []
    for record in others:
        try:
            valid.append({**validated_review(record), NUMBER: record.number})
        except Rejection as rejection:
            rejected.append((record, rejection))
    if valid:
        parts.append(typed_rows(valid))
    columns = pa.concat_batches(parts) if parts else typed_rows([])
    return ReviewColumns(batch.source, columns), rejected


