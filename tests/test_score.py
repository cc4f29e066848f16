import json

import numpy as np
import pandas as pd
import pytest

from pipelines import score
from tests.conftest import FIXTURE_CSV, FIXTURE_REJECTED, FIXTURE_ROWS, run_module
from trainer import predict


# Batch size 1 scores every review alone; trainer.predict below scores them all in one request:
# equal probabilities mean a review's score does not depend on its batch mates.
@pytest.mark.parametrize("output_format, batch_size", [("csv", 1), ("jsonl", 7)])
def test_scores_match_trainer_predict_and_rejections_are_kept(trained_job, tmp_path, output_format, batch_size):
    export = str(sorted((trained_job / "export").iterdir())[-1])
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
