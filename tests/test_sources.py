import gzip
import io

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.sources import MAX_FIELD_CHARS, ReadReviews, csv_records, records_in_file
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


def test_csv_error_becomes_a_record_and_reading_goes_on():
    text = io.StringIO(f'1,"{"a" * (MAX_FIELD_CHARS + 1)}"\n2,ok\n')
    records = list(csv_records("mem.csv", text))
    assert [r.number for r in records] == [1, 2]
    assert records[0].problem.startswith("unparseable_csv: field larger than field limit")
    assert records[1].values == ("2", "ok") and records[1].problem is None


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
