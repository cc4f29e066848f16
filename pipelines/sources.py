"""Reading raw reviews: Kaggle `Reviews.csv` and SNAP `finefoods.txt[.gz]`.

Both formats are parsed whole-file (quoted CSV fields may contain newlines, and
a SNAP review spans several lines), so files are matched with `fileio` and each
one is parsed by a single DoFn call. Nothing is validated here: every record
read becomes one `RawRecord`, however broken, so that validation can account
for it. There is no Reshuffle after reading: the dedup GroupByKey right after
validation already spreads rows over workers, and a second shuffle cost ~10%
of a local run.
"""
import codecs
import csv
import dataclasses
from typing import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from schemas import COLUMN_NAMES

SNAP_FIELDS = {
    "product/productId": "ProductId",
    "review/userId": "UserId",
    "review/profileName": "ProfileName",
    "review/helpfulness": "Helpfulness",
    "review/score": "Score",
    "review/time": "Time",
    "review/summary": "Summary",
    "review/text": "Text",
}

# The longest real review is ~32k characters. A field past this limit (most
# likely a stray quote swallowing the following rows) becomes a rejected
# record instead of exhausting a worker's memory.
MAX_FIELD_CHARS = 1_000_000
csv.field_size_limit(MAX_FIELD_CHARS)


@dataclasses.dataclass(frozen=True)
class RawRecord:
    """One record as read: `values` follow schemas.COLUMN_NAMES when the record
    could be split into fields, `problem` names what stopped the reader."""

    source: str
    number: int  # 1-based record number within the source file
    values: tuple
    problem: str | None = None


def text_lines(binary, chunk_size: int = 1 << 20) -> Iterator[str]:
    """Lines with their "\n" kept, from any object with read(): Beam's
    compressed files are not io streams, so TextIOWrapper cannot wrap them.
    surrogateescape keeps undecodable bytes visible to validation instead of
    failing the whole file."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    pending = ""
    while True:
        chunk = binary.read(chunk_size)
        pending += decoder.decode(chunk, final=not chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
        if not chunk:
            break
    if pending:
        yield pending


def csv_records(source: str, stream) -> Iterator[RawRecord]:
    reader = csv.reader(stream)
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. an oversized field; the reader resumes on the next line
            number += 1
            yield RawRecord(source, number, (), problem=f"unparseable_csv: {error}")
            continue
        if number == 0 and tuple(row) == COLUMN_NAMES:
            continue  # header
        if not row:
            continue  # blank line between records is not a record
        number += 1
        yield RawRecord(source, number, tuple(row))


def snap_block_values(block: dict[str, str], ordinal: int) -> tuple:
    """Maps a SNAP block onto Kaggle's columns; Id is the block's ordinal, as
    in Kaggle's conversion of the same file."""
    helpful = block.get("Helpfulness", "")
    numerator, _, denominator = helpful.partition("/")
    score = block.get("Score")
    if score is not None and score.endswith(".0"):
        score = score[:-2]
    return (
        str(ordinal),
        block.get("ProductId"),
        block.get("UserId"),
        block.get("ProfileName"),
        numerator if helpful else None,
        denominator if helpful else None,
        score,
        block.get("Time"),
        block.get("Summary"),
        block.get("Text"),
    )


def snap_records(source: str, stream) -> Iterator[RawRecord]:
    block: dict[str, str] = {}
    number = 0
    for line in stream:
        line = line.rstrip("\r\n")
        key, sep, value = line.partition(": ")
        if line.startswith("product/productId:") and block:
            number += 1
            yield RawRecord(source, number, snap_block_values(block, number))
            block = {}
        if not line.strip():
            continue
        if sep and key in SNAP_FIELDS:
            block[SNAP_FIELDS[key]] = value
        elif key.rstrip(":") in SNAP_FIELDS:  # "review/summary:" with an empty value
            block[SNAP_FIELDS[key.rstrip(":")]] = ""
        elif block:  # continuation of a field that held a raw newline
            last = next(reversed(block))
            block[last] += "\n" + line
    if block:
        number += 1
        yield RawRecord(source, number, snap_block_values(block, number))


def is_snap(first_bytes: bytes) -> bool:
    return first_bytes.lstrip().startswith(b"product/productId:")


def records_in_file(source: str, binary) -> Iterator[RawRecord]:
    """Sniffs the format from the first bytes rather than trusting the file name."""
    parse = snap_records if is_snap(binary.read(64)) else csv_records
    binary.seek(0)  # Beam's file objects, compressed ones too, can rewind
    yield from parse(source, text_lines(binary))


class ParseFileFn(beam.DoFn):
    def __init__(self):
        self.files = Metrics.counter("read", "files")
        self.records = Metrics.counter("read", "records")

    def process(self, readable_file: fileio.ReadableFile):
        self.files.inc()
        path = readable_file.metadata.path
        with readable_file.open() as binary:  # decompresses .gz by extension
            for record in records_in_file(path, binary):
                self.records.inc()
                yield record


class ReadReviews(beam.PTransform):
    """Local paths, globs or gs:// patterns (comma separated) → RawRecord."""

    def __init__(self, pattern: str):
        super().__init__()
        self.patterns = [p.strip() for p in pattern.split(",") if p.strip()]

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> fileio.MatchAll()
            | "OpenFiles" >> fileio.ReadMatches()
            | "ParseFiles" >> beam.ParDo(ParseFileFn())
        )
