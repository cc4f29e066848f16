import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipelines import score
from tests.conftest import (run_main, FIXTURE_CSV, FIXTURE_REJECTED, FIXTURE_ROWS, SHORT_TEXTS_CSV, latest_export, mounted_tmpfs,
                            run_module)
from tests.test_preprocess import read_split
from trainer import predict


# Batch size 1 scores every review alone; trainer.predict below scores them all in one request:
# equal probabilities mean a review's score does not depend on its batch mates.
@pytest.mark.parametrize("output_format, batch_size", [("csv", 1), ("jsonl", 7)])
def test_scores_match_trainer_predict_and_rejections_are_kept(trained_job, tmp_path, output_format, batch_size):
    export = latest_export(trained_job)
    prefix = tmp_path / "scores"
    assert score.main(["--model", export, "--input", str(FIXTURE_CSV), "--output", str(prefix), "--format", output_format,
                       "--batch-size", str(batch_size)]) == 0
    files = sorted(tmp_path.glob(f"scores-0*.{output_format}"))
    if output_format == "csv":
        scored = pd.concat(pd.read_csv(f) for f in files)
    else:
        scored = pd.DataFrame([json.loads(line) for f in files for line in f.read_text().splitlines()])
    rejected = [json.loads(line) for f in tmp_path.glob("scores-rejected-*.jsonl") for line in f.read_text().splitlines()]
    assert len(scored) + len(rejected) == FIXTURE_ROWS and len(rejected) == sum(FIXTURE_REJECTED.values())

    texts = pd.read_csv(FIXTURE_CSV, dtype=str, keep_default_na=False, encoding_errors="replace", on_bad_lines="skip").set_index("Id")["Text"]
    scored = scored.sort_values("Id")
    expected = predict.scored(predict.loaded_signature(export), [texts[str(i)] for i in scored["Id"]])
    np.testing.assert_allclose(scored["probability"], [p for p, _ in expected], atol=1e-5)
    assert scored["label"].tolist() == [label for _, label in expected]


def test_missing_export_is_a_one_line_error(tmp_path):
    result = run_main("pipelines.score", "--model", str(tmp_path), "--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"))
    assert result.returncode == 2 and "holds no saved_model.pb" in result.stderr and "Traceback" not in result.stderr


def test_reviews_with_no_words_are_rejected_with_a_reason_not_scored(trained_job, tmp_path):
    with open(FIXTURE_CSV, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        rows = list(csv.reader(handle))
    wordless = {"901": "😀😀👍", "902": "<br /><br />&amp;", "903": "2024 10 5"}
    rows += [[i, "B0W", "UW", "W", "0", "0", "5", "1300000000", "w", text] for i, text in wordless.items()]
    path = tmp_path / "in.csv"
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    export = latest_export(trained_job)
    assert score.main(["--model", export, "--input", str(path), "--output", str(tmp_path / "s")]) == 0
    scored = pd.concat(pd.read_csv(f) for f in sorted(tmp_path.glob("s-0*.csv")))
    rejected = [json.loads(line) for f in tmp_path.glob("s-rejected-*.jsonl") for line in f.read_text().splitlines()]
    no_words = sorted(str(r["Id"]) for r in rejected if r["reason"] == "no_words")
    assert no_words == sorted(wordless) and not set(scored["Id"].astype(str)) & set(wordless)
    assert len(scored) + len(rejected) == FIXTURE_ROWS + len(wordless)


def test_a_savedmodel_that_is_not_our_export_is_a_one_line_error(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x + 1}, input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": module.f})
    result = run_main("pipelines.score", "--model", str(tmp_path / "m"), "--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"))
    assert result.returncode == 2 and "not a trainer.task export" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["input_directory", "output_under_a_file", "batch_size_zero"])
def test_bad_paths_and_options_are_one_line_errors(trained_job, tmp_path, case):
    export = latest_export(trained_job)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    args = {"input_directory": ["--input", str(tmp_path), "--output", str(tmp_path / "s")],
            "output_under_a_file": ["--input", str(FIXTURE_CSV), "--output", str(a_file / "s")],
            "batch_size_zero": ["--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"), "--batch-size", "0"]}[case]
    result = run_main("pipelines.score", "--model", export, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()
    assert len(last) == 1 and last[0].startswith("score: error: ")
    assert {"input_directory": "is a directory", "output_under_a_file": "is a file", "batch_size_zero": "must be positive"}[case] in last[0]


def rows_of_ids(source, ids: set[int], path) -> str:
    """The raw CSV rows of these review ids, header and quoting kept."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows([rows[0], *(r for r in rows[1:] if int(r[0]) in ids)])
    return str(path)


@pytest.mark.slow
def test_drift_is_false_on_the_real_samples_own_test_reviews_and_true_on_short_other_texts(
        sample_job, prepared_sample, shared_sample, tmp_path):
    export = latest_export(sample_job)
    test_ids = {int(r["review_id"]) for r in read_split(prepared_sample, "test")}
    own = rows_of_ids(shared_sample, test_ids, tmp_path / "test_reviews.csv")
    assert score.main(["--model", export, "--input", own, "--output", str(tmp_path / "own")]) == 0
    report = json.loads((tmp_path / "own-drift.json").read_text())
    assert report["drift"] is False and report["measure"] == "population stability index" and report["threshold"] == 0.25
    assert set(report["distributions"]) == {"words_per_review", "oov_fraction", "score", "labels", "no_words"}
    assert all(d["band"] == "no significant change" for d in report["distributions"].values())
    assert report["scoring"]["reviews"] == len(test_ids) and report["training"]["reviews"] == json.loads(
        (prepared_sample / "report.json").read_text())["examples"]["val"]
    # Its label balance is the test split's, counted from the TFRecords.
    labels = [int(r["label"]) for r in read_split(prepared_sample, "test")]
    assert report["scoring"]["labels"] == {"negative": labels.count(0), "positive": labels.count(1)}

    result = run_module("pipelines.score", "--model", export, "--input", str(SHORT_TEXTS_CSV), "--output", str(tmp_path / "short"))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    report = json.loads((tmp_path / "short-drift.json").read_text())
    assert report["drift"] is True
    words = report["distributions"]["words_per_review"]
    assert words["drift"] and words["psi"] > 10 * max(words["noise_floor"], 0.25)  # far beyond what 24 reviews explain
    warning = next(line for line in result.stderr.splitlines() if "DRIFT" in line)
    assert "WARNING" in warning and "words_per_review PSI" in warning and "short-drift.json" in warning


def test_an_export_without_a_profile_is_scored_without_a_drift_check(trained_job, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(latest_export(trained_job), export)
    shutil.rmtree(export / "assets.extra")
    result = run_module("pipelines.score", "--model", str(export), "--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"))
    assert result.returncode == 0 and "carries no training profile" in result.stderr
    assert list(tmp_path.glob("s-0*.csv")) and not (tmp_path / "s-drift.json").exists()


def test_reviews_without_words_count_in_the_drift_check(trained_job, tmp_path):
    """They get no score, so only their share shows them: a file of emoji drifts on it alone."""
    rows = [["Id", "ProductId", "UserId", "ProfileName", "HelpfulnessNumerator", "HelpfulnessDenominator", "Score", "Time",
             "Summary", "Text"]] + [[str(i), "B0E", f"U{i}", "E", "0", "0", "5", "1300000000", "", "😀👍 🎉"] for i in range(1, 21)]
    path = tmp_path / "emoji.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    assert score.main(["--model", latest_export(trained_job), "--input", str(path), "--output", str(tmp_path / "e")]) == 0
    report = json.loads((tmp_path / "e-drift.json").read_text())
    assert report["drift"] is True and set(report["distributions"]) == {"no_words"}
    assert report["scoring"]["no_words"] == {"with_words": 0, "without_words": 20} and report["scoring"]["reviews"] == 0


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS"])
def test_a_score_output_that_cannot_be_written_is_a_one_line_error(trained_job, tmp_path, capsys, monkeypatch, errno_name):
    import errno
    import os

    from apache_beam.io.filesystems import FileSystems

    number = getattr(errno, errno_name)
    real_create = FileSystems.create
    prefix = tmp_path / "out" / "scores"

    def failing_create(path, *args, **kwargs):
        if str(tmp_path / "out") in path:
            raise OSError(number, os.strerror(number), path)
        return real_create(path, *args, **kwargs)

    monkeypatch.setattr(FileSystems, "create", failing_create)
    assert score.main(["--model", latest_export(trained_job), "--input", str(FIXTURE_CSV), "--output", str(prefix)]) == 2
    cause = "no space left on device" if errno_name == "ENOSPC" else "read-only file system"
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"score: error: cannot write --output {prefix}: {cause}"


def test_a_read_only_score_folder_is_a_one_line_error(trained_job, tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        assert score.main(["--model", latest_export(trained_job), "--input", str(FIXTURE_CSV),
                           "--output", str(read_only / "scores")]) == 2
    assert capsys.readouterr().err.strip() == f"score: error: cannot write --output's folder {read_only}: read-only file system"
