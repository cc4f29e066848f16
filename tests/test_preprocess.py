"""End to end: pipelines.preprocess on the fixture, on the real sample (checked
against an independent pandas computation), as a Dataflow job graph, and with
several worker processes."""
import csv
import json
import math
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import preprocess, rules
from reviews.validation import ReviewColumns
from tests.conftest import (run_main, FIXTURE_CSV, FIXTURE_DUPLICATES, FIXTURE_KEPT, FIXTURE_NEUTRAL, FIXTURE_REJECTED,
                            FIXTURE_ROWS, FIXTURE_UNHELPFUL, assert_one_line_error, lock_holder, mounted_tmpfs, raced,
                            run_module)

SPLITS = ("train", "val", "test")


def read_split(out_dir, split) -> list[dict]:
    """The TFRecords of one split, parsed with the transformed feature spec."""
    spec = tft.TFTransformOutput(str(out_dir)).transformed_feature_spec()
    files = sorted(tf.io.gfile.glob(os.path.join(str(out_dir), split, "*.tfrecord.gz")))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024).map(lambda s: tf.io.parse_example(s, spec))
    rows = []
    for batch in records.as_numpy_iterator():
        rows += [{key: batch[key][i] for key in batch} for i in range(len(batch["review_id"]))]
    return rows


@pytest.fixture(scope="module")
def fixture_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("fixture") / "out"
    assert preprocess.main(["--input", str(FIXTURE_CSV), "--output", str(out), "--max-length", "12",
                            "--num-shards", "2", "--test-fraction", "0.25", "--val-fraction", "0.25"]) == 0
    return out


def test_fixture_report_accounts_for_every_row(fixture_out):
    report = json.loads((fixture_out / "report.json").read_text())
    assert report["rows_read"] == FIXTURE_ROWS
    assert report["rejected"] == FIXTURE_REJECTED
    assert (report["neutral_dropped"], report["duplicates_dropped"], report["helpfulness_dropped"]) == (
        FIXTURE_NEUTRAL, FIXTURE_DUPLICATES, FIXTURE_UNHELPFUL)
    assert sum(report["examples"].values()) == FIXTURE_KEPT
    assert report["balanced"] is True
    # 17 kept: floor(0.75·17)=12 train+val, floor(0.75·12)=9 train.
    assert report["examples"] == {"train": 9, "val": 3, "test": 5}
    assert set(report["token_length_percentiles"]["all"]) == {"p50", "p90", "p99", "p99.9"}


def test_fixture_rejected_rows_are_written_with_reasons(fixture_out):
    lines = [json.loads(line) for f in sorted((fixture_out / "rejected").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted((line["record"], line["reason"]) for line in lines) == [
        (7, "column_count"), (8, "not_an_integer"), (9, "out_of_range"), (10, "empty_text"), (11, "undecodable_text")]
    assert all(line["source"].endswith("reviews.csv") and line["values"] for line in lines)


def test_fixture_tfrecords_hold_the_kept_reviews_split_by_time(fixture_out):
    splits = {split: read_split(fixture_out, split) for split in SPLITS}
    ids = {split: sorted(int(r["review_id"]) for r in rows) for split, rows in splits.items()}
    # Kept duplicate is Id 2 (ProductId A00… sorts first); 4 unhelpful, 5 neutral, 7-11 rejected.
    assert sorted(sum(ids.values(), [])) == [2, 3, 6, *range(12, 26)]
    # By (Time, Id): 12..20 (1.10e9-1.18e9) train; 21, 3 (1.20e9), 22 val; 23, 24, 25, 6 (1.27e9), 2 (1.30e9) test.
    assert ids["train"] == list(range(12, 21))
    assert ids["val"] == [3, 21, 22] and ids["test"] == [2, 6, 23, 24, 25]
    for row in splits["train"]:
        assert row["tokens"].shape == (12,) and row["tokens"].dtype == np.int64
    by_id = {int(r["review_id"]): r for rows in splits.values() for r in rows}
    assert by_id[3]["label"] == 0 and by_id[2]["label"] == 1 and by_id[6]["label"] == 0
    assert by_id[6]["time"] == 1270000000  # the review's Time, carried for evaluation by year


def test_fixture_examples_carry_exactly_the_transformed_features(fixture_out):
    # The split rides through tf.Transform as a passthrough column; it must not reach the files.
    files = sorted(str(f) for f in (fixture_out / "train").glob("*.tfrecord.gz"))
    serialized = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP"))).numpy()
    example = tf.train.Example.FromString(serialized)
    assert set(example.features.feature) == {"tokens", "label", "review_id", "num_words", "time"}
    assert len(example.features.feature["tokens"].int64_list.value) == 12


def fixture_rows() -> list[list[str]]:
    with open(FIXTURE_CSV, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return list(csv.reader(handle))


def written_csv(path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return str(path)


def preprocessed(input_path, out) -> int:
    return preprocess.main(["--input", str(input_path), "--output", str(out), "--max-length", "12", "--num-shards", "2",
                            "--test-fraction", "0.25", "--val-fraction", "0.25"])


def examples_by_id(out) -> dict:
    return {int(r["review_id"]): (int(r["label"]), r["tokens"].tolist()) for split in SPLITS for r in read_split(out, split)}


@pytest.mark.slow
def test_columns_are_read_by_header_name_whatever_their_order(fixture_out, tmp_path):
    rows = fixture_rows()
    order = [9, 8, 0, 6, 4, 5, 3, 2, 1, 7]  # Text before Summary, HelpfulnessNumerator before Score
    shuffled = [[r[i] for i in order] if len(r) == 10 else r for r in rows]  # a short row stays short: column_count
    path = written_csv(tmp_path / "reordered.csv", shuffled)
    assert preprocessed(path, tmp_path / "out") == 0
    mine, theirs = (json.loads((d / "report.json").read_text()) for d in (tmp_path / "out", fixture_out))
    assert mine == theirs and examples_by_id(tmp_path / "out") == examples_by_id(fixture_out)


@pytest.mark.slow
def test_ids_past_int64_are_rejected_and_wordless_reviews_dropped_with_a_reason(tmp_path):
    rows = fixture_rows()
    base = rows[12]  # Id 12, a good review
    wordless = {101: "😀😀👍", 102: "美味しいです", 103: "<br /><p></p>&quot;&amp;", 104: "12345 678"}
    extra = [[str(2**63), *base[1:]], [str(2**64 + 5), *base[1:]], [base[0], *base[1:7], str(2**63), *base[8:]]]
    extra[2][0] = "200"
    extra += [[str(i), f"B0W{i}", f"UW{i}", "W", "0", "0", "5", str(1150000000 + i), "w", text] for i, text in wordless.items()]
    path = written_csv(tmp_path / "more.csv", rows + extra)
    assert preprocessed(path, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["rows_read"] == FIXTURE_ROWS + len(extra)
    assert report["rejected"]["out_of_range"] == FIXTURE_REJECTED["out_of_range"] + 3  # two Ids and one Time
    assert sum(report["no_words_dropped"].values()) == len(wordless) and report["balanced"] is True
    assert not set(wordless) & set(examples_by_id(tmp_path / "out"))
    assert sum(report["examples"].values()) == FIXTURE_KEPT


def test_a_row_lost_between_stages_unbalances_the_ledger_and_fails_the_run(tmp_path, monkeypatch, capsys):
    """The ledger must be able to say no: a rules stage that loses one row silently."""
    class LosingRules(preprocess.ApplyNotebookRules):
        def expand(self, reviews):
            kept, dropped, sort_keys = super().expand(reviews)
            lose = lambda b: rules.filtered(b, pc.not_equal(b.columns.column("Id"), 12).to_numpy(zero_copy_only=False),  # noqa: E731
                                            b.columns.schema.names)
            return kept | "LoseId12" >> beam.Map(lose), dropped, sort_keys

    monkeypatch.setattr(preprocess, "ApplyNotebookRules", LosingRules)
    assert preprocessed(FIXTURE_CSV, tmp_path / "out") == 1
    assert "the ledger does not balance: the reader emitted 25 records but 24 fates" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["balanced"] is False and (report["rows_read"], report["fates_total"]) == (FIXTURE_ROWS, FIXTURE_ROWS - 1)


def test_a_header_without_a_required_column_is_a_one_line_error(tmp_path):
    rows = [[c for c in r] for r in fixture_rows()]
    path = written_csv(tmp_path / "noscore.csv", [[v for i, v in enumerate(r) if i != 6] for r in rows])
    result = run_main("pipelines.preprocess", "--input", path, "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"preprocess: error: {path}: the header lacks Score"


def test_raw_feature_batches_are_full_size_and_carry_their_split():
    reviews = [{"Text": f"review {i} café", "label": i % 2, "Id": i, "Time": 1_300_000_000 + i} for i in range(2500)]
    # Kept reviews arrive in column batches of any size; tf.Transform gets full batches of 1000.
    parts = [ReviewColumns("a.csv", pa.RecordBatch.from_pylist(reviews[a:b])) for a, b in ((0, 700), (700, 1900), (1900, 2500))]

    def summary(batch):
        column = lambda name: batch.column(batch.schema.get_field_index(name)).flatten().to_pylist()  # noqa: E731
        return (batch.num_rows, set(column(preprocess.SPLIT_COLUMN)), column("review_id")[0],
                column("text")[-1].decode(), column("label")[:2], column("time")[0] - column("review_id")[0],
                batch.get_total_buffer_size() < 2 * batch.nbytes)  # not a view of a bigger buffer

    with TestPipeline(runner="FnApiRunner") as pipeline:
        batches = (pipeline | beam.Create(parts, reshuffle=False)
                   | beam.ParDo(preprocess.RawFeatureBatchesFn(1000, "val")) | beam.Map(summary))
        assert_that(batches, equal_to([(1000, {1}, 0, "review 999 café", [0, 1], 1_300_000_000, True),
                                       (1000, {1}, 1000, "review 1999 café", [0, 1], 1_300_000_000, True),
                                       (500, {1}, 2000, "review 2499 café", [0, 1], 1_300_000_000, True)]))


def test_missing_input_is_a_one_line_error(tmp_path):
    result = run_main("pipelines.preprocess", "--input", str(tmp_path / "nope*.csv"), "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"preprocess: error: no input file matches {str(tmp_path / 'nope*.csv')!r}"
    assert "Traceback" not in result.stderr


def test_non_empty_output_refused_without_overwrite(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert preprocess.main(["--input", str(FIXTURE_CSV), "--output", str(tmp_path / "out")]) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").exists()


def test_overwrite_refuses_to_delete_an_input_inside_the_output(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    inside = out / "reviews.csv"
    inside.write_bytes(FIXTURE_CSV.read_bytes())
    assert preprocess.main(["--input", str(inside), "--output", str(out), "--overwrite"]) == 2
    assert "--overwrite would delete the input" in capsys.readouterr().err
    assert inside.read_bytes() == FIXTURE_CSV.read_bytes()


@pytest.mark.parametrize("case", ["input_directory", "output_is_a_file", "output_under_a_file"])
def test_bad_paths_are_one_line_errors(tmp_path, case):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    (tmp_path / "inputs").mkdir()
    input_path, output = {
        "input_directory": (tmp_path / "inputs", tmp_path / "o"),
        "output_is_a_file": (FIXTURE_CSV, a_file),
        "output_under_a_file": (FIXTURE_CSV, a_file / "prep"),
    }[case]
    result = run_main("pipelines.preprocess", "--input", str(input_path), "--output", str(output))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("preprocess: error: ") and ("is a directory" in last if case == "input_directory" else "is a file" in last)
    assert a_file.read_text() == "x"


def notebook_split_ids(csv_path) -> dict:
    """The notebook's rules and time split, computed independently with pandas."""
    import pandas as pd

    df = pd.read_csv(csv_path)
    df = df[df["Score"] != 3]
    df = df.sort_values(["ProductId", "Id"]).drop_duplicates(subset=["UserId", "ProfileName", "Time", "Text"], keep="first")
    df = df[df["HelpfulnessNumerator"] <= df["HelpfulnessDenominator"]].sort_values(["Time", "Id"])
    n = len(df)
    train_val = math.floor(0.8 * n)
    train = math.floor(0.8 * train_val)
    ids = df["Id"].tolist()
    return {"train": ids[:train], "val": ids[train:train_val], "test": ids[train_val:], "_labels": dict(zip(df["Id"], df["Score"] > 3)),
            "_times": dict(zip(df["Id"], df["Time"]))}


@pytest.mark.slow
def test_real_sample_matches_pandas_and_serving_transform(shared_sample, prepared_sample):
    out = prepared_sample
    report = json.loads((out / "report.json").read_text())
    expected = notebook_split_ids(shared_sample)
    assert report["rows_read"] == 5000 and report["rejected_total"] == 0
    assert report["neutral_dropped"] == 395  # Score 3 in the first 5,000 rows
    assert report["examples"] == {split: len(expected[split]) for split in SPLITS}
    assert report["balanced"] is True
    assert report["vocabulary_size"] <= 20000

    stored = {split: read_split(out, split) for split in SPLITS}
    for split in SPLITS:
        assert sorted(int(r["review_id"]) for r in stored[split]) == sorted(expected[split])
        assert all(int(r["label"]) == int(expected["_labels"][int(r["review_id"])]) for r in stored[split])
        assert all(int(r["time"]) == int(expected["_times"][int(r["review_id"])]) for r in stored[split])

    # No training/serving skew: the saved transform graph applied to the raw
    # texts gives exactly the stored tokens.
    import pandas as pd

    texts = pd.read_csv(shared_sample).set_index("Id")["Text"]
    rows = stored["test"][:200]
    raw = {"text": tf.constant([texts[int(r["review_id"])] for r in rows])}
    served = tft.TFTransformOutput(str(out)).transform_features_layer()(raw)["tokens"].numpy()
    np.testing.assert_array_equal(served, np.stack([r["tokens"] for r in rows]))


@pytest.mark.slow
def test_dataflow_job_graph_builds_offline():
    result = run_module(
        "pipelines.preprocess", "--input", "gs://example-bucket/Reviews.csv", "--output", "gs://example-bucket/prep",
        "--runner", "DataflowRunner", "--project", "example-project", "--region", "us-central1",
        "--temp_location", "gs://example-bucket/tmp", "--staging_location", "gs://example-bucket/staging",
        "--setup_file", "./setup.py", "--experiments=upload_graph", "--dry_run=True", "--no_auth",
        "--sdk_location=container",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dry run: DataflowRunner job") and "upload_graph" in lines[0]
    stages = {line.split("stage ", 1)[1] for line in lines[1:]}
    assert {"ReadReviews", "ValidateReviews", "NotebookRules", "AssignSplit", "Analyze[train]", "Transform", "DropNoWords",
            "WriteTransformFn", "WriteExamples", "SplitStats", "WriteRejected", "WriteReport"} <= stages


@pytest.mark.slow
def test_two_worker_processes_give_the_same_output(fixture_out, tmp_path):
    out = tmp_path / "mp"
    result = run_module("pipelines.preprocess", "--input", str(FIXTURE_CSV), "--output", str(out), "--max-length", "12",
                        "--num-shards", "2", "--test-fraction", "0.25", "--val-fraction", "0.25",
                        "--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
    assert result.returncode == 0, result.stderr[-3000:]
    # The workers' logs reach the runner too, and are filtered the same way.
    assert [line for line in result.stderr.splitlines() if " INFO preprocess: " not in line] == [], result.stderr[-3000:]
    assert json.loads((out / "report.json").read_text()) == json.loads((fixture_out / "report.json").read_text())
    for split in SPLITS:
        mine = sorted((int(r["review_id"]), r["tokens"].tolist()) for r in read_split(out, split))
        theirs = sorted((int(r["review_id"]), r["tokens"].tolist()) for r in read_split(fixture_out, split))
        assert mine == theirs


@pytest.mark.parametrize("argument, message", [
    ("--vocab_sise=10", "unknown option --vocab_sise (did you mean --vocab_size?)"),  # ours, misspelt
    ("--direct_num_workerz=2", "unknown option --direct_num_workerz (did you mean --direct_num_workers?)"),  # Beam's
    ("stray", "unexpected argument 'stray'"),
])
def test_unknown_options_are_one_line_errors_not_beam_warnings(tmp_path, argument, message):
    result = run_main("pipelines.preprocess", "--input", str(FIXTURE_CSV), "--output", str(tmp_path / "o"), argument)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"preprocess: error: {message}"
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_truncated_gzip_input_keeps_its_whole_rows_and_the_ledger_balances(tmp_path):
    import gzip
    import zlib

    rows = [fixture_rows()[0]] + [[str(i), f"B0T{i:05d}", f"UT{i}", "T", "0", "0", str(1 + i % 5), str(1100000000 + 86400 * i),
                                   "s", f"review {i}: tasty crunchy snack, would buy again"] for i in range(1, 401)]
    plain = tmp_path / "plain.csv"
    written_csv(plain, rows)
    compressed = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(compressed[: len(compressed) * 2 // 3])
    readable_rows = zlib.decompressobj(wbits=31).decompress(cut.read_bytes()).count(b"\n") - 1  # whole lines less the header
    assert preprocessed(cut, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["rejected"] == {"truncated_gzip": 1} and report["rows_read"] == readable_rows + 1
    assert sum(report["examples"].values()) + report["neutral_dropped"] == readable_rows and report["balanced"] is True


# ---------------------------------------------------------------- faults at the edges

def test_num_shards_above_a_splits_reviews_is_capped(tmp_path, capsys):
    out = tmp_path / "out"
    assert preprocess.main(["--input", str(FIXTURE_CSV), "--output", str(out), "--max-length", "12", "--num-shards", "100000",
                            "--test-fraction", "0.25", "--val-fraction", "0.25"]) == 0
    report = json.loads((out / "report.json").read_text())
    files = {split: sorted(p.name for p in (out / split).iterdir()) for split in SPLITS}
    # Counted from the files, apart from the report: one file per review at most, each named "of" its split's count.
    assert {split: len(names) for split, names in files.items()} == {"train": 9, "val": 3, "test": 5} == report["examples"]
    assert files["val"] == [f"part-{i:05d}-of-00003.tfrecord.gz" for i in range(3)]
    assert report["shards"] == {"requested": 100000, "train": 9, "val": 3, "test": 5}
    assert {split: len(read_split(out, split)) for split in SPLITS} == report["examples"]
    assert "--num-shards 100,000 capped at each split's reviews: train 9 files, val 3 files, test 5 files" in capsys.readouterr().out


def test_the_report_records_the_schemas_fixed_bounds(fixture_out):
    bounds = json.loads((fixture_out / "report.json").read_text())["bounds"]
    assert bounds["Time"] == {"min": 788918400, "max": 4102444799}  # 1995-01-01 .. 2099-12-31, never the clock
    assert bounds["Score"] == {"min": 1, "max": 5}


def test_millisecond_times_and_non_ascii_integers_are_rejected_with_reasons(tmp_path):
    rows = fixture_rows()
    header, good = rows[0], rows[1]
    odd = {"ms": ("Time", "1300000000000"), "space": ("Score", " 5"), "plus": ("Score", "+4"),
           "underscore": ("HelpfulnessDenominator", "1_0"), "arabic": ("Score", "\u0663")}
    extra = []
    for i, (name, (column, value)) in enumerate(odd.items()):
        row = list(good)
        row[0], row[header.index("UserId")], row[header.index(column)] = str(900 + i), f"U{name}", value
        extra.append(row)
    path = written_csv(tmp_path / "odd.csv", [header, *extra, *[r for r in rows[1:] if len(r) == len(header)]])
    out = tmp_path / "out"
    assert preprocessed(path, out) == 0
    rejected = {json.loads(line)["record"]: json.loads(line)["reason"]
                for f in (out / "rejected").glob("*.jsonl") for line in f.read_text().splitlines()}
    assert [rejected[n] for n in range(1, 6)] == ["out_of_range"] + ["not_an_integer"] * 4
    assert 900 not in {int(r["review_id"]) for split in SPLITS for r in read_split(out, split)}


def test_a_header_naming_a_column_twice_is_a_one_line_error(tmp_path, capsys):
    rows = fixture_rows()
    path = written_csv(tmp_path / "twice.csv", [rows[0] + ["Text"], *[r + ["other text"] for r in rows[1:]]])
    assert preprocess.main(["--input", path, "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (f"preprocess: error: {path}: the header names Text twice (columns 10 and 11): "
                                               "which one is meant?")
    assert not (tmp_path / "out").exists()


def test_a_second_writer_of_one_output_is_refused_before_it_deletes_anything(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "theirs.txt").write_text("being written")
    with lock_holder(out) as holder:
        assert preprocess.main(["--input", str(FIXTURE_CSV), "--output", str(out), "--overwrite"]) == 2
    assert_one_line_error(capsys.readouterr().err, "preprocess", f"{out} is being written by test holder (pid {holder.pid}")
    assert (out / "theirs.txt").read_text() == "being written"  # --overwrite deleted nothing


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS", "EACCES"])
def test_a_shard_write_that_fails_is_a_one_line_error_and_no_report(tmp_path, capsys, monkeypatch, errno_name):
    import errno

    from pipelines import sink

    number = getattr(errno, errno_name)
    real_create = sink.FileSystems.create

    def failing_create(path, *args, **kwargs):
        if ".tfrecord.gz" in path:
            raise OSError(number, os.strerror(number), path)
        return real_create(path, *args, **kwargs)

    monkeypatch.setattr(sink.FileSystems, "create", failing_create)
    out = tmp_path / "out"
    assert preprocessed(FIXTURE_CSV, out) == 2
    cause = {"ENOSPC": "no space left on device", "EROFS": "read-only file system", "EACCES": "permission denied"}[errno_name]
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"preprocess: error: cannot write --output {out}: {cause}"
    assert not (out / "report.json").exists()  # nothing looks finished: the trainer refuses it


@pytest.mark.slow
def test_a_full_or_read_only_disk_is_a_one_line_error(tmp_path, synthetic_csv):
    with mounted_tmpfs(tmp_path / "small", "400k") as small:
        result = run_module("pipelines.preprocess", "--input", str(synthetic_csv), "--output", str(small / "out"))
        assert result.returncode == 2
        assert_one_line_error(result.stderr, "preprocess", f"cannot write --output {small / 'out'}: no space left on device")
        assert not (small / "out" / "report.json").exists()
    with mounted_tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        assert preprocess.main(["--input", str(FIXTURE_CSV), "--output", str(read_only)]) == 2


@pytest.mark.slow
def test_two_overwriting_runs_at_once_leave_one_whole_output_and_one_refusal(tmp_path):
    rows = fixture_rows()
    smaller = written_csv(tmp_path / "smaller.csv", rows[:-3])  # another input: its report says whose output this is
    inputs = {str(FIXTURE_CSV): FIXTURE_ROWS, smaller: FIXTURE_ROWS - 3}
    out = tmp_path / "out"
    assert preprocessed(FIXTURE_CSV, out) == 0  # an earlier output that both runs would --overwrite
    for attempt in range(3):
        results = raced(tmp_path / f"barrier-{attempt}", *[
            ("pipelines.preprocess", "--input", path, "--output", str(out), "--overwrite", "--max-length", "12",
             "--num-shards", "2", "--test-fraction", "0.25", "--val-fraction", "0.25") for path in inputs])
        winners = [r for r in results if r.returncode == 0]
        losers = [r for r in results if r.returncode != 0]
        assert len(winners) == 1 and len(losers) == 1, [(r.returncode, r.stderr[-2000:]) for r in results]
        winner, loser = winners[0], losers[0]
        assert loser.returncode == 2
        assert_one_line_error(loser.stderr, "preprocess", f"{out} is being written by pipelines.preprocess (pid {winner.pid}")
        report = json.loads((out / "report.json").read_text())
        assert report["balanced"] and report["rows_read"] == inputs[winner.args[2]]
        assert {split: len(read_split(out, split)) for split in SPLITS} == report["examples"]
        assert sorted(p.name for p in out.iterdir()) == ["metadata", "rejected", "report.json", "test", "train", "transform_fn",
                                                          "transformed_metadata", "val"]
