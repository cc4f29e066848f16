import json

import numpy as np
import pandas as pd
import pytest

from pipelines import score
from tests.conftest import FIXTURE_CSV, FIXTURE_REJECTED, FIXTURE_ROWS, latest_export, run_module
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
    result = run_module("pipelines.score", "--model", str(tmp_path), "--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"))
    assert result.returncode == 2 and "holds no saved_model.pb" in result.stderr and "Traceback" not in result.stderr


def test_reviews_with_no_words_are_rejected_with_a_reason_not_scored(trained_job, tmp_path):
    import csv

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
    result = run_module("pipelines.score", "--model", str(tmp_path / "m"), "--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"))
    assert result.returncode == 2 and "not a trainer.task export" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["input_directory", "output_under_a_file", "batch_size_zero"])
def test_bad_paths_and_options_are_one_line_errors(trained_job, tmp_path, case):
    export = latest_export(trained_job)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    args = {"input_directory": ["--input", str(tmp_path), "--output", str(tmp_path / "s")],
            "output_under_a_file": ["--input", str(FIXTURE_CSV), "--output", str(a_file / "s")],
            "batch_size_zero": ["--input", str(FIXTURE_CSV), "--output", str(tmp_path / "s"), "--batch-size", "0"]}[case]
    result = run_module("pipelines.score", "--model", export, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()
    assert len(last) == 1 and last[0].startswith("score: error: ")
    assert {"input_directory": "is a directory", "output_under_a_file": "is a file", "batch_size_zero": "must be positive"}[case] in last[0]
