import csv
import gzip
import io
import random
import zlib

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

import reviews.records
from pipelines.sources import ReadReviews
from reviews.records import header_problem, records_in_file
from tests.conftest import FIXTURE_CSV, FIXTURE_ROWS


def fixture_records():
    with open(FIXTURE_CSV, "rb") as binary:
        return list(records_in_file(str(FIXTURE_CSV), binary))


def test_csv_keeps_quoted_newlines_commas_and_escaped_quotes():
    records = {r.number: r for r in fixture_records()}
    assert len(records) == FIXTURE_ROWS  # header skipped, multi-line record counted once
    assert records[6].values[9] == "Way too salty,\nnot worth the price at all"
    assert records[3].values[3] == 'Bob "the chef"'
    assert records[1].values[9] == "Delicious coffee,<br />will buy again!"
    assert len(records[7].values) == 9  # a short row is read as it is, for validation to reject


def test_undecodable_bytes_survive_as_surrogates_not_errors():
    records = {r.number: r for r in fixture_records()}
    assert "\udcff" in records[11].values[9]
    assert records[16].values[9].endswith("Señor approved!")


def snap_text(rows) -> str:
    blocks = []
    for row in rows:
        _, product, user, profile, num, den, score, time, summary, text = row
        blocks.append("\n".join([
            f"product/productId: {product}", f"review/userId: {user}", f"review/profileName: {profile}",
            f"review/helpfulness: {num}/{den}", f"review/score: {score}.0", f"review/time: {time}",
            f"review/summary: {summary}", f"review/text: {text}",
        ]))
    return "\n\n".join(blocks) + "\n\n"


def test_snap_and_kaggle_formats_yield_the_same_records(tmp_path):
    # SNAP holds one review per block and no Id; Kaggle's Id is the block ordinal.
    valid = [r.values for r in fixture_records() if r.number in (12, 13, 14, 15, 16)]
    renumbered = [(str(i), *values[1:]) for i, values in enumerate(valid, start=1)]
    path = tmp_path / "finefoods.txt.gz"
    path.write_bytes(gzip.compress(snap_text(renumbered).encode("utf-8")))
    with beam.io.filesystems.FileSystems.open(str(path)) as binary:
        snap = list(records_in_file(str(path), binary))
    assert [r.values for r in snap] == renumbered


def test_read_reviews_matches_globs_and_gz(tmp_path):
    (tmp_path / "a.csv").write_bytes(FIXTURE_CSV.read_bytes())
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(FIXTURE_CSV.read_bytes()))
    with TestPipeline(runner="FnApiRunner") as p:
        counts = (
            p
            | ReadReviews(f"{tmp_path}/*.csv,{tmp_path}/*.gz")
            | beam.Map(lambda r: r.source.rsplit("/", 1)[-1])
            | beam.combiners.Count.PerElement()
        )
        assert_that(counts, equal_to([("a.csv", FIXTURE_ROWS), ("b.csv.gz", FIXTURE_ROWS)]))


# ---------------------------------------------------------------- damage and headers
# Hand-made files; every expectation is counted from how the file was made.

HEADER = "Id,ProductId,UserId,ProfileName,HelpfulnessNumerator,HelpfulnessDenominator,Score,Time,Summary,Text"


def row(i: int, text: str | None = None) -> str:
    return f'{i},B00{i:07d},U{i},Name {i},1,2,{1 + i % 5},{1300000000 + i},Summary {i},"{text or f"Review number {i}, fine."}"'


def read(data: bytes, name: str = "mem.csv") -> list:
    return list(records_in_file(name, io.BytesIO(data)))


def good_and_bad(records) -> tuple[list, list]:
    return [r for r in records if r.problem is None], [r for r in records if r.problem is not None]


def test_header_columns_are_found_by_name_in_any_order_with_a_bom_and_extra_columns():
    rows = [list(csv.reader([row(i)]))[0] for i in range(1, 6)]
    expected = [tuple(r) for r in rows]  # already in schema order
    order = [9, 8, 0, 6, 4, 5, 3, 2, 1, 7]  # Text before Summary, HelpfulnessNumerator before Score
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([HEADER.split(",")[i] for i in order] + ["Extra"])
    writer.writerows([r[i] for i in order] + ["ignored"] for r in rows)
    records = read(("\ufeff" + out.getvalue()).encode())
    assert [r.values for r in records] == expected and all(r.problem is None for r in records)


def test_header_problem_names_a_missing_column_and_accepts_good_headers(tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text(HEADER.replace(",Score", "") + "\n")
    assert header_problem(str(missing)).endswith("the header lacks Score")
    good = tmp_path / "good.csv.gz"
    good.write_bytes(gzip.compress(("\ufeff" + HEADER + "\n" + row(1) + "\n").encode()))
    assert header_problem(str(good)) is None
    headerless = tmp_path / "headerless.csv"
    headerless.write_text(row(1) + "\n")
    assert header_problem(str(headerless)) is None  # Kaggle's column order
    assert header_problem(str(FIXTURE_CSV)) is None


def test_a_stray_quote_rejects_its_line_and_every_other_row_is_read():
    for stray_at in (101, 195):  # past MAX_RECORD_LINES before the end, and within it at the end
        lines = [HEADER] + [row(i) for i in range(1, 201)]
        lines[stray_at] = lines[stray_at].replace(f'"Review number {stray_at}, fine."', f'"Review number {stray_at}, fine.')
        records = read(("\n".join(lines) + "\n").encode())
        good, bad = good_and_bad(records)
        assert len(records) == 200 and len(good) == 199
        assert [(r.problem.split(":")[0], r.line, r.values[0]) for r in bad] == [("runaway_quote", stray_at + 1, str(stray_at))]
        assert sorted(int(r.values[0]) for r in good) == [i for i in range(1, 201) if i != stray_at]


def test_end_of_file_inside_one_long_field_is_one_damaged_record():
    prose = "\n".join(f"line {i} of a long text" for i in range(10))
    data = ("\n".join([HEADER, row(1), row(2)[:-1] + prose]) + "\n").encode()  # the quote of row 2 never closes
    good, bad = good_and_bad(read(data))
    assert [r.values[0] for r in good] == ["1"]
    assert len(bad) == 1 and bad[0].problem.startswith("unterminated_quote") and bad[0].values[0] == "2"
    assert (bad[0].line, bad[0].lines, bad[0].bytes) == (3, 10, len(data) - len(HEADER) - len(row(1)) - 2)  # row 2 and the 9 lines after it


@pytest.mark.parametrize("newlines", [True, False])
def test_an_oversized_text_is_one_rejection_with_its_id_and_leading_fields(newlines):
    huge = ("word " * 12 + "\n" if newlines else "word " * 12) * 90_000  # about 5.4 MB
    lines = [HEADER] + [row(i) for i in range(1, 51)] + [row(51, huge)] + [row(i) for i in range(52, 101)]
    records = read(("\n".join(lines) + "\n").encode())
    good, bad = good_and_bad(records)
    assert len(records) == 100 and len(good) == 99
    (oversized,) = bad
    assert oversized.problem.startswith("oversized_record") and oversized.values[:3] == ("51", "B000000051", "U51")
    assert oversized.lines == (90_001 if newlines else 1) and oversized.bytes > 5_000_000
    assert sum(len(v or "") for v in oversized.values) < 100_000  # the rejection line is not 5 MB


def test_truncated_gzip_keeps_the_whole_rows_and_reports_the_cut():
    text = ("\n".join([HEADER] + [row(i) for i in range(1, 1001)]) + "\n").encode()
    compressed = gzip.compress(text)
    cut = compressed[: len(compressed) // 2]
    readable = zlib.decompressobj(wbits=31).decompress(cut)  # what any gunzip gets out of the cut file
    whole_rows = readable.count(b"\n") - 1  # complete lines, less the header
    good, bad = good_and_bad(read(cut, "cut.csv.gz"))
    assert len(good) == whole_rows and [int(r.values[0]) for r in good] == list(range(1, whole_rows + 1))
    assert len(bad) == 1 and bad[0].problem.startswith("truncated_gzip") and bad[0].line == whole_rows + 2


def test_a_corrupt_gzip_is_one_damage_record_and_a_plain_file_named_gz_is_read():
    text = ("\n".join([HEADER] + [row(i) for i in range(1, 300)]) + "\n").encode()
    compressed = bytearray(gzip.compress(text))
    compressed[len(compressed) // 3: len(compressed) // 3 + 40] = b"\xff" * 40
    # The decoder would go on producing plausible false rows past the damage: no row of the file is used.
    records = read(bytes(compressed), "bad.csv.gz")
    assert len(records) == 1 and records[0].problem.startswith("corrupt_gzip") and records[0].values == ()
    assert len(read(text, "plain-but-named.csv.gz")) == 299


def test_cr_only_line_endings_are_read_as_line_ends():
    text = "\r".join([HEADER] + [row(i) for i in range(1, 31)]) + "\r"
    good, bad = good_and_bad(read(text.encode()))
    assert len(good) == 30 and not bad and good[-1].values[9] == "Review number 30, fine."


def test_a_snap_block_that_lost_its_first_line_does_not_overwrite_the_one_before():
    blocks = snap_text([(str(i), f"B{i}", f"U{i}", "P", "1", "2", "5", "1300000000", f"S{i}", f"text {i}") for i in (1, 2, 3)])
    damaged = blocks.replace("product/productId: B2\n", "", 1)
    records = read(damaged.encode(), "finefoods.txt")
    assert [r.values[9] for r in records] == ["text 1", "text 2", "text 3"]
    assert [r.values[1] for r in records] == ["B1", None, "B3"]  # validation rejects the middle one: missing_field


def test_a_stray_quote_before_an_oversized_row_costs_only_those_two_rows():
    lines = [HEADER] + [row(i) for i in range(1, 41)]
    lines[10] = lines[10][:-1]  # row 10's quote never closes
    lines[15] = row(15, "long " * 60_000)  # 300 kB, within MAX_RECORD_LINES of the stray quote
    good, bad = good_and_bad(read(("\n".join(lines) + "\n").encode()))
    assert sorted((r.problem.split(":")[0], r.values[0]) for r in bad) == [("oversized_record", "15"), ("runaway_quote", "10")]
    assert sorted(int(r.values[0]) for r in good) == [i for i in range(1, 41) if i not in (10, 15)]


def test_header_problem_reads_cr_only_files_and_names_an_empty_one(tmp_path):
    cr = tmp_path / "cr.csv"
    cr.write_bytes(("\r".join([HEADER, row(1), row(2)]) + "\r").encode())
    assert header_problem(str(cr)) is None
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert header_problem(str(empty)) == f"{empty} is empty"


# ---------------------------------------------------------------- the columnar fast path

def state_machine_records(name: str, data: bytes, chunk: int | None = None) -> list:
    """The reader with no fast path: every line through the record state machine
    (given the same chunks, since CR-only files are judged by their first chunk)."""
    chunk = chunk or reviews.records.READ_CHUNK_BYTES
    chunks = iter([data[i:i + chunk] for i in range(0, len(data), chunk)])
    return list(reviews.records.CsvReader(name).records(reviews.records.Rereadable(reviews.records.numbered(reviews.records.byte_lines(chunks)))))


def tricky_csv() -> bytes:
    """Plain lines and every kind of line the fast path must leave to the state
    machine, mixed: quoted newlines, lone CRs, a quote inside an unquoted field,
    a quote after a closing quote, NUL, bad UTF-8, blank lines, a short row, a
    stray quote that runs away, and a doubled quote inside a quoted field."""
    lines = [HEADER] + [row(i) for i in range(1, 121)]
    lines[5] = row(5, 'Line one,\nline two')
    lines[9] = row(9).replace("Summary 9", "Sum\rmary 9")
    lines[14] = row(14).replace("Summary 14", 'Sum"mary 14')
    lines[20] = row(20).replace('"Review number 20, fine."', '"Review "number" 20"')
    lines[23] = row(23).replace("Summary 23", "Sum\x00mary")
    lines[30] = row(30).replace("Summary 30", "caf\udcc3")
    lines[33] = ""
    lines[40] = "41,B0041,U41,short"
    lines[50] = row(50).replace('"Review number 50, fine."', '"He said ""wow"", twice"')
    lines[60] = row(60).replace('"Review number 60, fine."', '"Review number 60, fine.')  # the stray quote
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("chunk", [reviews.records.READ_CHUNK_BYTES, 64, 1000])
def test_the_fast_path_reads_exactly_what_the_state_machine_reads(monkeypatch, chunk):
    monkeypatch.setattr(reviews.records, "READ_CHUNK_BYTES", chunk)  # small chunks: lines cut at every boundary
    for name, data in [("tricky.csv", tricky_csv()), ("fixture.csv", FIXTURE_CSV.read_bytes()),
                       ("crlf.csv", tricky_csv().replace(b"\n", b"\r\n")), ("cr.csv", tricky_csv().replace(b"\n", b"\r")),
                       ("no_newline_at_end.csv", tricky_csv().rstrip(b"\n"))]:
        assert read(data, name) == state_machine_records(name, data, chunk), name


def test_plain_lines_stay_columnar_and_the_rest_are_odd_records():
    batches = list(reviews.records.batches_in_file("tricky.csv", io.BytesIO(tricky_csv())))
    plain = [n for b in batches if b.plain is not None for n in b.plain.column("_number").to_pylist()]
    odd = [record.number for b in batches for record in b.odd]
    records = read(tricky_csv(), "tricky.csv")
    assert sorted(plain + odd) == list(range(1, len(records) + 1))  # every record number once, across both kinds
    assert {5, 9} <= set(odd) and len(plain) > 60  # the quoted newline and the lone CR are the state machine's
    assert [r.number for r in records if r.problem is None and r.lines > 1] == [5]


def test_the_real_sample_is_read_columnar_and_alike(shared_sample):
    data = shared_sample.read_bytes()
    batches = list(reviews.records.batches_in_file(shared_sample.name, io.BytesIO(data)))
    assert sum(len(b) for b in batches) == 5000 and sum(len(b.odd) for b in batches) < 50
    assert [r for b in batches for r in b.records()] == state_machine_records(shared_sample.name, data)


NASTY = [b'%d,P,U,N,1,2,5,100,S,"unclosed', b'%d,P,U,N,1,2,5,100,"S,T', b'%d,P,U,N,1,2,5,100,S,"multi\nline\nfield"',
         b'%d,P,U,N,1,2,5,100,S,"a"b', b'%d,P,U,N,1,2,5,100,S,T"', b'%d,P,U,N,1,2,5,100,S,T,extra', b'%d,P,U,N,1,2,5,100,S',
         b'%d,P,U,N,1,2,5,100,S,\xff', b'%d,P,U,N,1,2,5,100,S,a\x00b', b'', b'  ', b'%d,P,U,N,1,2,5,100,S,"ends ""',
         b'%d,"P\r\nQ",U,N,1,2,5,100,S,T', b'"%d,P,U,N,1,2,5,100,S,T', b'\xef\xbb\xbf%d,P,U,N,1,2,5,100,S,T',
         b'%d,P,U,N,1,2,5,100,S,"' + b'\n' * 3 + b'"', b'%d,P,U,N,1,2,+5, 100 ,S,\t']


def fuzzed_csv(seed: int) -> bytes:
    """Plain rows in runs of 0 to 70 (past MAX_RECORD_LINES: a stray quote then runs away) between nasty lines."""
    r = random.Random(seed)
    eol = r.choice([b"\n", b"\n", b"\r\n"])
    parts = [HEADER.encode() if r.random() < 0.8 else b"Text,Id,ProductId,UserId,ProfileName,HelpfulnessNumerator,"
             b"HelpfulnessDenominator,Score,Time,Summary,Extra"]
    for _ in range(r.randint(1, 6)):
        for _ in range(r.choice([0, 1, 3, 20, 55, 70])):
            i = len(parts)
            parts.append(b'%d,P%d,U%d,"N, ""x""",%d,%d,%d,%d,S,"t %d"' % (
                i, r.randint(1, 3), r.randint(1, 3), r.randint(0, 3), r.randint(0, 3), r.randint(1, 5), r.randint(1, 9), i))
        for _ in range(r.randint(1, 3)):
            line = r.choice(NASTY)
            parts.append(line % len(parts) if b"%d" in line else line)
    return eol.join(parts) + (eol if r.random() < 0.6 else b"")


@pytest.mark.parametrize("seed", range(40))
def test_fuzzed_files_read_alike_both_ways(monkeypatch, seed):
    data = fuzzed_csv(seed)
    for chunk in (None, 64, 1000):
        if chunk:
            monkeypatch.setattr(reviews.records, "READ_CHUNK_BYTES", chunk)
        assert read(data, "fuzz.csv") == state_machine_records("fuzz.csv", data, chunk), (seed, chunk)


@pytest.mark.parametrize("failure", ["raises", "short"])
def test_when_arrow_disagrees_the_state_machine_reads_the_run(monkeypatch, failure):
    def disagreeing(self, data):
        if failure == "raises":
            raise reviews.records.pa.ArrowInvalid("as if a parser changed")
        return original(self, data).slice(1)  # one row too few

    original = reviews.records.CsvReader.arrow_table
    monkeypatch.setattr(reviews.records.CsvReader, "arrow_table", disagreeing)
    data = tricky_csv()
    batches = list(reviews.records.batches_in_file("tricky.csv", io.BytesIO(data)))
    assert all(b.plain is None for b in batches)
    assert read(data, "tricky.csv") == state_machine_records("tricky.csv", data)


def quoted_header_csv(rows: range) -> bytes:
    """As spreadsheet programs write a CSV: a byte order mark, then every field quoted, the header too."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER.split(","))
    writer.writerows(list(csv.reader([row(i)]))[0] for i in rows)
    return ("\ufeff" + out.getvalue()).encode()


def test_a_quoted_header_after_a_byte_order_mark_is_read_like_an_unquoted_one(tmp_path):
    quoted = read(quoted_header_csv(range(1, 6)))
    plain = read(("\ufeff" + "\n".join([HEADER, *(row(i) for i in range(1, 6))]) + "\n").encode())
    assert [r.values for r in quoted] == [r.values for r in plain] and len(plain) == 5
    assert all(r.problem is None for r in quoted)
    path = tmp_path / "excel.csv"
    path.write_bytes(quoted_header_csv(range(1, 6)))
    assert header_problem(str(path)) is None
