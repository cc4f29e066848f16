"""Reading raw reviews: Kaggle `Reviews.csv` and SNAP `finefoods.txt[.gz]`.

Both formats are parsed whole-file (quoted CSV fields may contain newlines, and
a SNAP review spans several lines), so each file is read by one call
(pipelines/sources.py: one DoFn call per file). Nothing is validated here, and nothing is
dropped: every record read becomes one `RawRecord`, however broken, so that
validation can account for it. Damage the reader itself sees becomes a record
with a `problem` and its position (line, byte, and how much of the file it
covers):

    unterminated_quote  the file ends inside a quoted field
    runaway_quote       a quote opened on one line is still open many lines on,
                        over lines that are records of their own: that line is
                        rejected and reading goes on at the next one
    oversized_record    a record over MAX_RECORD_BYTES, or over MAX_RECORD_LINES
                        lines of one field: one rejection, with the fields that
                        could be read (the Id first)
    truncated_gzip      the compressed stream stops before its end
    corrupt_gzip        the compressed stream cannot be decompressed
    unparseable_csv     the csv module refuses a record

CSV columns are found by the header's names (any order, extra columns
ignored, a UTF-8 byte order mark tolerated); `header_problem` checks a file's
header before a pipeline starts. Files are decompressed by their content (the
gzip magic bytes), not their name, and CR-only line endings are read as line
ends.

Speed: a record that is one plain line (every field unquoted, or quoted with
only doubled quotes inside, the header's number of fields, valid UTF-8, no
NUL, no lone CR) is read the same by Python's csv module and by Arrow's CSV
parser, so stretches of such lines are parsed by pyarrow.csv in C++ and stay
columnar (`ReviewBatch.plain`). Every other line goes through the record state
machine below, exactly as before (`ReviewBatch.odd`), and record numbers run
through both in file order. `records_in_file` gives the same records one by one.
"""
import csv
import dataclasses
import re
import zlib
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

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

# The longest real review is ~32k characters on one line (every record of the
# real sample is one line). A record past either limit is either a stray quote
# swallowing the rows after it or a field nobody should train on.
MAX_RECORD_BYTES = 256 * 1024
MAX_RECORD_LINES = 50
# How much of an oversized record is kept to read its leading fields from.
HEAD_BYTES = 16 * 1024
csv.field_size_limit(MAX_RECORD_BYTES + HEAD_BYTES)

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
BOM = "\ufeff"


@dataclasses.dataclass(frozen=True)
class RawRecord:
    """One record as read: `values` follow schemas.COLUMN_NAMES when the record
    could be split into fields, `problem` ("reason: detail") names what stopped
    the reader. `line` and `byte` are where the record starts in the
    (decompressed) file, 1-based and 0-based; `lines` and `bytes` its extent."""

    source: str
    number: int  # 1-based record number within the source file
    values: tuple
    problem: str | None = None
    line: int = 0
    byte: int = 0
    lines: int = 1
    bytes: int = 0


class StreamDamage(Exception):
    """The byte stream broke off: what is pending when it does is damaged."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- bytes and lines

def decompressed_chunks(binary, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes, gunzipped when they start with the gzip magic (one or
    more members). A stream that stops early raises StreamDamage after the bytes
    that could be read; one that does not inflate raises it where zlib notices."""
    first = binary.read(chunk_bytes)
    if not first.startswith(GZIP_MAGIC):
        chunk = first
        while chunk:
            yield chunk
            chunk = binary.read(chunk_bytes)
        return
    inflater, offset, chunk = zlib.decompressobj(wbits=31), 0, first
    while chunk:
        try:
            out = inflater.decompress(chunk)
            while inflater.eof and inflater.unused_data:  # the next gzip member
                rest = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                out += inflater.decompress(rest)
        except zlib.error as error:
            raise StreamDamage("corrupt_gzip", f"it fails to inflate in compressed bytes {offset:,} to "
                                               f"{offset + len(chunk):,} ({error})") from None
        if out:
            yield out
        offset += len(chunk)
        chunk = binary.read(chunk_bytes)
    if not inflater.eof:
        raise StreamDamage("truncated_gzip", f"the compressed stream stops at byte {offset:,} before its end")


def corruption(binary) -> tuple[StreamDamage, int, int] | None:
    """(damage, lines, bytes inflated before it) if the file is a corrupt gzip.
    A damaged deflate stream goes on decoding to plausible but false rows (back-
    references copy earlier text) until zlib notices, so no row of such a file
    can be trusted: it is checked whole before any row is read. A truncated
    stream decodes correctly up to the cut, so it is not corruption."""
    lines = size = 0
    try:
        for chunk in decompressed_chunks(binary, chunk_bytes=1 << 16):  # small: says where it failed
            lines, size = lines + chunk.count(b"\n"), size + len(chunk)
    except StreamDamage as damage:
        if damage.reason == "corrupt_gzip":
            return damage, lines, size
    return None


def byte_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines with their line end kept. CR-only files (old Mac exports) are read
    as if their CRs were newlines, judged from the first chunk with a line end."""
    pending, cr_only = b"", None
    for chunk in chunks:
        if cr_only is None and (b"\r" in chunk or b"\n" in chunk):  # judged by the first line end
            cr_only = b"\n" not in chunk
        if cr_only:
            chunk = chunk.replace(b"\r", b"\n")
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


def decoded(line: bytes) -> str:
    """surrogateescape keeps bytes that are not UTF-8 visible to validation."""
    return line.decode("utf-8", errors="surrogateescape")


Line = tuple  # (1-based line number, byte offset, the line's bytes)


def numbered(lines: Iterator[bytes]) -> Iterator[Line]:
    offset = 0
    for number, raw in enumerate(lines, start=1):
        yield number, offset, raw
        offset += len(raw)


class Rereadable:
    """An iterator of lines that lines can be pushed back onto, to be read again."""

    def __init__(self, lines: Iterator[Line]):
        self.lines = lines
        self.pushed: list[Line] = []
        self.last: Line | None = None

    def __iter__(self):
        return self

    def __next__(self) -> Line:
        self.last = self.pushed.pop() if self.pushed else next(self.lines)
        return self.last

    def push(self, lines: list[Line]) -> None:
        self.pushed.extend(reversed(lines))

    def next_position(self) -> tuple[int, int]:
        """Where the line after the last one read starts."""
        return (1, 0) if self.last is None else (self.last[0] + 1, self.last[1] + len(self.last[2]))


class ChunkLines(Rereadable):
    """The lines of a stream a chunk at a time. Read one by one they are the
    same (number, offset, bytes) lines as `Rereadable(numbered(byte_lines(...)))`;
    `plain_run` instead hands over a whole stretch of lines that `plain_lines`
    marks as plain records, as positions into the current chunk."""

    def __init__(self, chunks: Iterator[bytes]):
        super().__init__(iter(()))
        self.chunks = chunks
        self.pending = b""
        self.cr_only = None
        self.data = b""  # the current chunk's complete lines, line ends kept
        self.starts = self.ends = np.zeros(0, np.int64)
        self.index = 0  # the next line of data
        self.number, self.offset = 1, 0  # line number and stream offset of data's first line
        self.plain: np.ndarray | None = None
        self.before_run: Line | None = None

    def refilled(self) -> bool:
        """The next chunk's complete lines (the rest waits for the chunk after
        it), or the last line at the end of the stream; False at the end."""
        self.number += len(self.starts)
        self.offset += len(self.data)
        while True:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.data, self.pending = self.pending, b""
                ends = [len(self.data)] if self.data else []
                break
            if self.cr_only is None and (b"\r" in chunk or b"\n" in chunk):  # judged by the first line end
                self.cr_only = b"\n" not in chunk
            if self.cr_only:
                chunk = chunk.replace(b"\r", b"\n")
            buffer = self.pending + chunk
            cut = buffer.rfind(b"\n") + 1
            self.data, self.pending = buffer[:cut], buffer[cut:]
            if cut:
                ends = np.flatnonzero(np.frombuffer(self.data, np.uint8) == 10) + 1
                break
        self.ends = np.asarray(ends, np.int64)
        self.starts = np.concatenate([[0], self.ends[:-1]]).astype(np.int64)
        self.index, self.plain = 0, None
        return bool(len(self.ends))

    def __next__(self) -> Line:
        if self.pushed:
            self.last = self.pushed.pop()
            return self.last
        if self.index == len(self.ends) and not self.refilled():
            raise StopIteration
        i = self.index
        self.index += 1
        self.last = (self.number + i, self.offset + int(self.starts[i]), self.data[self.starts[i]:self.ends[i]])
        return self.last

    def plain_run(self, plain_lines) -> tuple[int, int] | None:
        """(first, stop) indices into the current chunk of the plain lines that
        come next, or None when the next line is not plain (or none is left).
        `plain_lines(self)` marks the chunk's lines, once per chunk."""
        if self.pushed or (self.index == len(self.ends) and not self.refilled()):
            return None
        if self.plain is None:
            self.plain = plain_lines(self)
        if not self.plain[self.index]:
            return None
        rest = np.flatnonzero(~self.plain[self.index:])
        first, stop = self.index, self.index + (int(rest[0]) if len(rest) else len(self.ends) - self.index)
        self.index, self.before_run = stop, self.last
        self.last = (self.number + stop - 1, self.offset + int(self.starts[stop - 1]),
                     self.data[self.starts[stop - 1]:self.ends[stop - 1]])
        return first, stop

    def unread_run(self, first: int, stop: int) -> None:
        """Gives a run back, to be read line by line after all."""
        self.plain[first:stop] = False
        self.index, self.last = first, self.before_run


@dataclasses.dataclass
class Span:
    """Consecutive lines of one record: kept while it is small, only counted
    once it is oversized."""

    line: int  # where it starts: 1-based line number and byte offset
    byte: int
    kept: list = dataclasses.field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    quotes: int = 0  # '"' seen so far: odd means a quoted field is still open

    def add(self, line: Line, keep: bool = True) -> None:
        if keep:
            self.kept.append(line)
        self.lines += 1
        self.bytes += len(line[2])
        self.quotes += line[2].count(b'"')

    def head(self, size: int = HEAD_BYTES) -> bytes:
        return b"".join(raw for _, _, raw in self.kept)[:size]

    def text(self) -> str:
        return decoded(b"".join(raw for _, _, raw in self.kept))


# ---------------------------------------------------------------- CSV

def header_names(row: list[str]) -> list[str]:
    return [name.strip() for name in row]


def header_map(row: list[str]) -> dict[str, int] | None:
    """Column name → position, when `row` is a header (it names any of our columns)."""
    names = header_names(row)
    if not set(names) & set(COLUMN_NAMES):
        return None
    return {name: names.index(name) for name in COLUMN_NAMES if name in names}


def repeated_column(row: list[str]) -> tuple[str, int, int] | None:
    """(name, first column, second column; 1-based) of a column of ours the header names twice."""
    names = header_names(row)
    for position, name in enumerate(names):
        if name in COLUMN_NAMES and names.index(name) < position:
            return name, names.index(name) + 1, position + 1
    return None


def missing_columns(header: dict[str, int]) -> list[str]:
    return [name for name in COLUMN_NAMES if name not in header]


def parsed_row(text: str) -> list[str] | None:
    """The fields of one complete record, or None if the csv module refuses it."""
    try:
        rows = list(csv.reader([text]))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def parsed_first_row(text: str) -> list[str] | None:
    """The file's first record, without the byte order mark spreadsheet programs
    write: csv would keep it inside the first field, and so read a quoted header's
    `\ufeff"Id"` as a field named `\ufeff"Id"` rather than Id."""
    return parsed_row(text.removeprefix(BOM))


# A field as both csv (excel dialect) and Arrow read it alike: unquoted with
# no quote, or quoted with only doubled quotes inside; no NUL, CR or line end.
PLAIN_FIELD = r'(?:[^",\r\n\x00]*|"(?:[^"\r\n\x00]|"")*")'
POSITIONS = ("_number", "_line", "_byte", "_bytes")  # of each plain row: as RawRecord's number, line, byte, bytes


def plain_line_pattern(width: int) -> str:
    return rf"^{PLAIN_FIELD}(?:,{PLAIN_FIELD}){{{width - 1}}}\r?\n?$"


def starts_with_bom(lines: ChunkLines) -> np.ndarray:
    data = np.frombuffer(lines.data, np.uint8)
    bom = np.zeros(len(lines.starts), bool)
    room = lines.ends - lines.starts >= 3
    for i, byte in enumerate(BOM.encode("utf-8")):
        bom[room] = (bom[room] | (i == 0)) & (data[lines.starts[room] + i] == byte)
    return bom


def utf8_lines(lines: ChunkLines, candidates: np.ndarray) -> np.ndarray:
    """Which candidate lines are valid UTF-8 (one check of the chunk when all are)."""
    try:
        lines.data.decode("utf-8")
        return candidates
    except UnicodeDecodeError:
        pass
    valid = candidates.copy()
    for i in np.flatnonzero(candidates):
        try:
            lines.data[lines.starts[i]:lines.ends[i]].decode("utf-8")
        except UnicodeDecodeError:
            valid[i] = False
    return valid


class CsvReader:
    """Kaggle CSV → RawRecord, with positions and the damage listed above."""

    def __init__(self, source: str):
        self.source = source
        self.number = 0
        self.header: dict[str, int] | None = None
        self.width = len(COLUMN_NAMES)

    def plain_lines(self, lines: ChunkLines) -> np.ndarray:
        """Marks the chunk's plain lines; line 1 (a header or not) is always read
        by the state machine."""
        offsets = np.concatenate([[0], lines.ends]).astype(np.int64)
        array = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(lines.ends),
                                                 [None, pa.py_buffer(offsets), pa.py_buffer(lines.data)])
        plain = pc.match_substring_regex(array, plain_line_pattern(self.width)).to_numpy(zero_copy_only=False)
        plain &= (lines.ends - lines.starts) <= MAX_RECORD_BYTES
        plain &= ~starts_with_bom(lines)  # Arrow drops a byte order mark that csv keeps
        if lines.number == 1 and len(plain):
            plain[0] = False
        return utf8_lines(lines, plain)

    def arrow_table(self, data: memoryview) -> pa.Table:
        names = [f"c{i}" for i in range(self.width)]
        return pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(column_types={name: pa.large_string() for name in names},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                  null_values=[]),
        )

    def plain_rows(self, lines: ChunkLines) -> Iterator[pa.RecordBatch]:
        """Stretches of plain lines, parsed by Arrow: columns in
        schemas.COLUMN_NAMES order (strings as read) plus their POSITIONS."""
        while (run := lines.plain_run(self.plain_lines)) is not None:
            first, stop = run
            start, end = int(lines.starts[first]), int(lines.ends[stop - 1])
            try:
                table = self.arrow_table(memoryview(lines.data)[start:end])
            except pa.ArrowInvalid:
                table = None
            if table is None or table.num_rows != stop - first:  # never seen (the pattern makes one record a
                lines.unread_run(first, stop)                    # line), but then the state machine reads them
                return
            positions = {
                "_number": np.arange(self.number + 1, self.number + 1 + table.num_rows, dtype=np.int64),
                "_line": np.arange(lines.number + first, lines.number + stop, dtype=np.int64),
                "_byte": lines.offset + lines.starts[first:stop],
                "_bytes": lines.ends[first:stop] - lines.starts[first:stop],
            }
            self.number += table.num_rows
            order = [self.header[name] for name in COLUMN_NAMES] if self.header else range(len(COLUMN_NAMES))
            columns = [table.column(i).combine_chunks() for i in order] + [pa.array(positions[p]) for p in POSITIONS]
            yield pa.RecordBatch.from_arrays(columns, names=[*COLUMN_NAMES, *POSITIONS])

    def record(self, span: Span, values: tuple, problem: str | None = None) -> RawRecord:
        self.number += 1
        return RawRecord(self.source, self.number, values, problem, span.line, span.byte, span.lines, span.bytes)

    def ordered(self, row: list[str]) -> tuple[tuple, str | None]:
        """Fields in schemas.COLUMN_NAMES order, by the header's names."""
        if self.header is None:
            return tuple(row), None
        if len(row) != self.width:
            return tuple(row), f"column_count: {len(row)} fields, the header has {self.width}"
        return tuple(row[self.header[name]] for name in COLUMN_NAMES), None

    def head_values(self, span: Span) -> tuple:
        """The fields that can be read from the start of a damaged record (its Id first)."""
        head = decoded(span.head())
        row = parsed_row(head + '"') or parsed_row(head) or []
        if self.header is None:
            return tuple(row)
        return tuple(row[i] if i < len(row) else None for i in (self.header[name] for name in COLUMN_NAMES))

    def looks_like_records(self, lines: list[Line]) -> bool:
        """Whether lines swallowed by an open quote are records of their own (a stray
        quote) rather than the lines of one long field."""
        id_at = self.header["Id"] if self.header else 0
        sample = [decoded(raw) for _, _, raw in lines[:20] if raw.strip()]
        rows = [parsed_row(text) for text in sample]
        records = [row for row in rows if row is not None and len(row) == self.width and row[id_at].strip().isdigit()]
        return bool(sample) and 2 * len(records) >= len(sample)

    def complete(self, span: Span) -> Iterator[RawRecord]:
        row = parsed_first_row(span.text()) if span.line == 1 else parsed_row(span.text())
        if row is None:
            yield self.record(span, (), "unparseable_csv: the csv module cannot split this record")
        elif span.line == 1 and header_map(row) is not None:
            header = header_map(row)
            if missing_columns(header):  # header_problem stops such a file before a run starts
                raise ValueError(f"{self.source}: the header lacks {', '.join(missing_columns(header))}")
            self.header, self.width = header, len(row)
        elif row and row != [""]:  # a blank line between records is not a record
            yield self.record(span, *self.ordered(row))

    def first_line_alone(self, span: Span) -> RawRecord:
        """The line whose quote ran away: a record if csv reads it whole (a quote
        inside an unquoted field is a letter to csv), else a rejection."""
        first = Span(span.line, span.byte)
        first.add(span.kept[0])
        row = parsed_row(first.text())
        # A line end inside a field means the quote opened a field that never closed.
        if row is not None and len(row) == self.width and not any("\n" in field for field in row):
            return self.record(first, *self.ordered(row))
        return self.record(first, tuple(row or ()), f"runaway_quote: a quote opened on line {span.line:,} is not closed "
                                                    f"on the lines after it, which are records of their own")

    def oversized(self, span: Span, lines: Rereadable, why: str) -> RawRecord:
        """Reads on to where the open quote closes (or the file ends), counting but
        not keeping the lines, and rejects the whole record once."""
        for line in (lines if span.quotes % 2 else ()):
            span.add(line, keep=False)
            if span.quotes % 2 == 0:
                break
        closed = span.quotes % 2 == 0
        detail = f"{why}; it spans {span.lines:,} lines, {span.bytes:,} bytes from line {span.line:,}"
        return self.record(span, self.head_values(span), ("oversized_record: " + detail) if closed else
                           f"unterminated_quote: {detail}, to the end of the file")

    def records(self, source_lines: Iterator[Line]) -> Iterator[RawRecord | pa.RecordBatch]:
        lines = source_lines if isinstance(source_lines, Rereadable) else Rereadable(source_lines)
        span = None
        try:
            while True:
                for line in lines:
                    span = span or Span(line[0], line[1])
                    span.add(line)
                    open_quote = span.quotes % 2 == 1
                    too_big = span.bytes > MAX_RECORD_BYTES or span.lines > MAX_RECORD_LINES
                    if not open_quote and span.bytes <= MAX_RECORD_BYTES:
                        yield from self.complete(span)
                    elif open_quote and too_big and span.lines > 1 and self.looks_like_records(span.kept[1:]):
                        yield self.first_line_alone(span)  # a stray quote: reject its line, read the rest again
                        lines.push(span.kept[1:])
                    elif too_big:
                        why = f"over {MAX_RECORD_BYTES:,} bytes" if span.bytes > MAX_RECORD_BYTES else \
                            f"a field of over {MAX_RECORD_LINES} lines"
                        yield self.oversized(span, lines, why)
                    else:
                        continue  # the quote may close on a later line
                    span = None
                    if isinstance(lines, ChunkLines):
                        yield from self.plain_rows(lines)
                if span is None:
                    return
                # The file ends inside a quoted field.
                if span.lines > 1 and self.looks_like_records(span.kept[1:]):
                    yield self.first_line_alone(span)
                    lines.push(span.kept[1:])
                    span = None
                    continue
                yield self.record(span, self.head_values(span),
                                  f"unterminated_quote: the file ends inside a quoted field opened on line {span.line:,} "
                                  f"(it spans {span.lines:,} lines, {span.bytes:,} bytes)")
                return
        except StreamDamage as damage:
            cut = span or Span(*lines.next_position())
            yield self.record(cut, self.head_values(cut) if span else (),
                              f"{damage.reason}: {damage.detail}; the record it cuts starts at line {cut.line:,}")


def csv_records(source: str, chunks: Iterator[bytes]) -> Iterator[RawRecord | pa.RecordBatch]:
    """RawRecords, and RecordBatches of plain rows (see CsvReader.plain_rows)."""
    yield from CsvReader(source).records(ChunkLines(chunks))


# ---------------------------------------------------------------- SNAP

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


def snap_records(source: str, chunks: Iterator[bytes]) -> Iterator[RawRecord]:
    """A block starts at product/productId, or wherever a field repeats (a block
    that lost its first line): one review's field is never written over with
    another's. A field missing from a block then fails validation, with the
    block's Id."""
    lines = Rereadable(numbered(byte_lines(chunks)))
    block: dict[str, str] = {}
    span, number = Span(1, 0), 0

    def emitted(problem=None) -> RawRecord:
        nonlocal number
        number += 1
        values = snap_block_values(block, number)
        if problem:  # what could be read, not megabytes of it
            values = tuple(v[:HEAD_BYTES] if isinstance(v, str) else v for v in values)
        return RawRecord(source, number, values, problem, span.line, span.byte, span.lines, span.bytes)

    try:
        for line in lines:
            text = decoded(line[2]).rstrip("\r\n")
            key, sep, value = text.partition(": ")
            field = SNAP_FIELDS.get(key if sep else key.rstrip(":"))
            if field and block and (field == "ProductId" or field in block):
                yield emitted(oversized_problem(span))
                block, span = {}, Span(line[0], line[1])
            span.add(line, keep=False)
            if field:
                block[field] = value
            elif block and text.strip() and span.bytes <= MAX_RECORD_BYTES:  # a field that held a raw newline
                last = next(reversed(block))
                block[last] += "\n" + text
    except StreamDamage as damage:
        span = span if block else Span(*lines.next_position())
        yield emitted(f"{damage.reason}: {damage.detail}; the block it cuts starts at line {span.line:,}")
        return
    if block:
        yield emitted(oversized_problem(span))


def oversized_problem(span: Span) -> str | None:
    if span.bytes <= MAX_RECORD_BYTES:
        return None
    return f"oversized_record: a block of {span.lines:,} lines, {span.bytes:,} bytes from line {span.line:,}"


# ---------------------------------------------------------------- files

def is_snap(first_bytes: bytes) -> bool:
    return first_bytes.lstrip().startswith(b"product/productId:")


@dataclasses.dataclass(frozen=True)
class ReviewBatch:
    """Consecutive records of one file: the plain rows as Arrow columns (see
    CsvReader.plain_rows), every other record as a RawRecord. Between them they
    hold each record number of their stretch once."""

    source: str
    plain: pa.RecordBatch | None = None
    odd: tuple = ()

    def __len__(self) -> int:
        return (self.plain.num_rows if self.plain is not None else 0) + len(self.odd)

    def plain_record(self, i: int) -> RawRecord:
        row = {name: self.plain.column(name)[i].as_py() for name in (*COLUMN_NAMES, *POSITIONS)}
        return RawRecord(self.source, row["_number"], tuple(row[name] for name in COLUMN_NAMES), None,
                         row["_line"], row["_byte"], 1, row["_bytes"])

    def records(self) -> list[RawRecord]:
        """All of them as RawRecords, in file order."""
        plain = [self.plain_record(i) for i in range(self.plain.num_rows)] if self.plain is not None else []
        return sorted(plain + list(self.odd), key=lambda record: record.number)


# Rows per ReviewBatch: big enough that per-element costs vanish, small enough
# to be light (~4 MB of real reviews).
BATCH_ROWS = 8192
# Decompressed bytes handed to the reader at a time (Arrow parses a run of
# plain lines of one chunk in one call).
READ_CHUNK_BYTES = 4 << 20


def items_in_file(source: str, binary) -> Iterator[RawRecord | pa.RecordBatch]:
    """RawRecords and plain-row RecordBatches, in file order. Sniffs the format
    from the first (decompressed) bytes rather than trusting the file name."""
    if binary.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
        binary.seek(0)
        corrupt = corruption(binary)
        if corrupt:
            damage, lines, size = corrupt
            yield RawRecord(source, 1, (), f"{damage.reason}: {damage.detail}; none of the {lines:,} lines inflated before "
                            f"that is used, since a damaged stream decodes to false rows", line=1, lines=lines, bytes=size)
            return
    binary.seek(0)
    chunks = decompressed_chunks(binary, READ_CHUNK_BYTES)
    try:
        first = next(chunks)
    except StopIteration:
        return
    except StreamDamage as damage:
        yield RawRecord(source, 1, (), f"{damage.reason}: {damage.detail}", line=1, lines=0)
        return

    def all_chunks():
        yield first
        yield from chunks

    parse = snap_records if is_snap(first[:64]) else csv_records
    yield from parse(source, all_chunks())


def batches_in_file(source: str, binary, batch_rows: int = BATCH_ROWS) -> Iterator[ReviewBatch]:
    plain, odd, rows = [], [], 0
    for item in items_in_file(source, binary):
        if isinstance(item, RawRecord):
            odd.append(item)
            rows += 1
        else:
            plain.append(item)
            rows += item.num_rows
        if rows >= batch_rows:
            yield ReviewBatch(source, pa.concat_batches(plain) if plain else None, tuple(odd))
            plain, odd, rows = [], [], 0
    if rows:
        yield ReviewBatch(source, pa.concat_batches(plain) if plain else None, tuple(odd))


def records_in_file(source: str, binary) -> Iterator[RawRecord]:
    """Every record of the file, one by one, in file order."""
    for batch in batches_in_file(source, binary):
        yield from batch.records()


def header_problem(path: str) -> str | None:
    """What is wrong with a CSV file's header, if anything: checked before a run,
    since a file read by position under a reordered header trains on the wrong columns."""
    import tensorflow as tf  # here, not at import: reading records needs no TensorFlow

    with tf.io.gfile.GFile(path, "rb") as binary:
        try:
            first = next(decompressed_chunks(binary), b"")
        except StreamDamage:
            return None  # the reader reports the damage as a rejected record
    if not first:
        return f"{path} is empty"
    if is_snap(first[:64]):
        return None
    first_line = decoded(next(byte_lines(iter([first])))).rstrip("\r\n")  # CR-only files too
    row = parsed_first_row(first_line) or []
    header = header_map(row)
    if header is None:
        if len(row) == len(COLUMN_NAMES) and row[0].strip().isdigit():
            return None  # no header: Kaggle's column order
        return f"{path}: the first line is neither a header naming {', '.join(COLUMN_NAMES)} nor a review"
    missing = missing_columns(header)
    if missing:
        return f"{path}: the header lacks {', '.join(missing)}"
    twice = repeated_column(row)
    return f"{path}: the header names {twice[0]} twice (columns {twice[1]} and {twice[2]}): which one is meant?" if twice else None


