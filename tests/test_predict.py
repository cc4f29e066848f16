import json
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.conftest import run_main, REPO, latest_export, run_module
from trainer import data, models, predict


def keras_probabilities(job, prepared, export, texts) -> np.ndarray:
    """Independent of predict.scored: the export's own tokens into the Keras model with the job's evaluated weights."""
    tokens = tf.saved_model.load(export).signatures["transform_features"](text=tf.constant(texts))["tokens"]
    model = models.BUILDERS["lstm1"](data.data_spec(str(prepared)).vocab_size)
    restored = json.loads((job / "metrics.json").read_text())["restore_best_weights"]
    model.load_weights(str(job / "checkpoints" / ("best.weights.h5" if restored else "final.weights.h5")))
    return model.predict(tokens, verbose=0).reshape(-1)


def test_predict_cli_prints_probability_and_label_per_review(trained_job, prepared, tmp_path):
    export = latest_export(trained_job)
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("\ufeffStale and awful, never again.\n\nDelicious, will buy again!\n😀👍 12345\n")  # with a BOM
    result = run_main("trainer.predict", "--model", export, "--input", str(reviews), "Great value")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "probability\tlabel\treview" and len(lines) == 5  # blank line skipped
    texts = ["Great value", "Stale and awful, never again.", "Delicious, will buy again!"]
    expected = keras_probabilities(trained_job, prepared, export, texts)
    for line, probability in zip(lines[1:4], expected):
        got_probability, got_label, _ = line.split("\t")
        assert abs(float(got_probability) - probability) < 1e-4
        assert got_label == ("positive" if probability >= 0.5 else "negative")
    assert lines[4].startswith("-\tno_words\t😀👍 12345") and "not scored" in lines[4]
    assert lines[2].split("\t")[2] == "Stale and awful, never again."  # the BOM is not part of the review


def test_a_review_with_no_words_gets_no_score(trained_job):
    serve = predict.loaded_signature(latest_export(trained_job))
    scores = predict.scored(serve, ["<br /><br />", "Tasty!", "", "😀😀"])
    assert scores[0] is None and scores[2] is None and scores[3] is None
    assert scores[1] is not None and 0 <= scores[1][0] <= 1 and scores[1][1] == int(scores[1][0] >= 0.5)


def test_predict_without_export_is_a_one_line_error(tmp_path):
    result = run_main("trainer.predict", "--model", str(tmp_path), "text")
    assert result.returncode == 2 and "holds no saved_model.pb" in result.stderr and "Traceback" not in result.stderr
    result = run_main("trainer.predict", "--model", str(tmp_path / "nope"), "text")
    assert result.stderr.strip().splitlines() == [f"predict: error: {tmp_path / 'nope'} does not exist"]


def test_a_savedmodel_that_is_not_our_export_is_a_one_line_error(tmp_path):
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures={"serving_default": module.double})
    result = run_main("trainer.predict", "--model", str(tmp_path / "other"), "text")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is a SavedModel but not a trainer.task export" in result.stderr.strip().splitlines()[-1]


def test_non_utf8_input_is_a_one_line_error(trained_job, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Très bon café\n".encode("latin-1"))
    result = run_main("trainer.predict", "--model", latest_export(trained_job), "--input", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "cannot read --input" in result.stderr
    argv = subprocess.run([sys.executable.encode(), b"-m", b"trainer.predict", b"--model", latest_export(trained_job).encode(),
                           "Très bon".encode("latin-1")], cwd=REPO, capture_output=True, timeout=300)
    assert argv.returncode == 2 and b"not valid UTF-8" in argv.stderr and b"Traceback" not in argv.stderr
