"""trainer.task end to end on tiny data: artifacts, export fidelity, bad input,
a real kill-and-resume, and two workers under MultiWorkerMirroredStrategy."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from deploy.serving.batching import BatchingOptions
from reviews.contract import REVIEW_ID, TOKENS
from tests.conftest import (run_main, REPO, assert_one_line_error, concurrently, http_json, latest_export, lock_holder,
                            mounted_tmpfs, run_module, scored_alone_and_among_long_reviews, serving_at)
from trainer import data, models, predict, recipes, task
from trainer.distribution import worker_shard


def test_job_leaves_history_metrics_plot_logs_and_checkpoints(trained_job, prepared):
    history = json.loads((trained_job / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc", "seconds"} <= set(history[0])
    metrics = json.loads((trained_job / "metrics.json").read_text())
    for key in ("test_loss", "test_accuracy", "test_auc", "test_precision", "test_recall", "test_examples",
                "params", "seconds_per_epoch", "examples_per_second"):
        assert metrics[key] is not None, key
    assert metrics["test_examples"] == json.loads((prepared / "report.json").read_text())["examples"]["test"]
    assert (trained_job / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (trained_job / "checkpoints" / "best.weights.h5").exists()
    assert any((trained_job / "logs").rglob("events.out.tfevents.*"))
    assert not list(trained_job.glob(".scratch-*")) and not list((trained_job / "checkpoints").glob("backup*"))


def lowest_val_loss_epoch(job) -> int:
    """Independent of the callback: the 1-based epoch of history.json's lowest val_loss
    (highest val_auc for a model whose recipe picks its best epoch by that)."""
    history = json.loads((job / "history.json").read_text())
    if json.loads((job / "metrics.json").read_text())["best_epoch_by"] == "val_auc":
        return max(history, key=lambda e: e["val_auc"])["epoch"]
    return min(history, key=lambda e: e["val_loss"])["epoch"]


def evaluated_weights(job) -> str:
    metrics = json.loads((job / "metrics.json").read_text())
    return str(job / "checkpoints" / ("best.weights.h5" if metrics["restore_best_weights"] else "final.weights.h5"))


@pytest.fixture(scope="module")
def bucketed_job(tmp_path_factory, prepared):
    job = tmp_path_factory.mktemp("bucketed") / "lstm1"
    assert task.main(["--data", str(prepared), "--job-dir", str(job), "--epochs", "3", "--batch-size", "64",
                      "--steps-per-epoch", "4", "--learning-rate", "0.01", "--mixed-precision"]) == 0  # bucketed by default
    return job


NEW_MODELS = ("bilstm", "fasttext", "tfidf")


@pytest.fixture(scope="module")
def new_model_jobs(tmp_path_factory, prepared) -> dict:
    """Each model beyond the notebook's, trained briefly with its own recipe."""
    jobs = {}
    for name in NEW_MODELS:
        jobs[name] = tmp_path_factory.mktemp(name) / name
        assert task.main(["--data", str(prepared), "--job-dir", str(jobs[name]), "--model", name, "--epochs", "2",
                          "--batch-size", "64", "--steps-per-epoch", "6"]) == 0
    return jobs


@pytest.fixture(params=["fixed", "bucketed", *NEW_MODELS])
def any_job(request, trained_job, bucketed_job, new_model_jobs):
    return {"fixed": trained_job, "bucketed": bucketed_job, **new_model_jobs}[request.param]


def test_export_on_raw_text_equals_the_evaluated_model_on_stored_tokens(any_job, prepared, synthetic_csv):
    metrics = json.loads((any_job / "metrics.json").read_text())
    assert metrics["best_epoch"] == lowest_val_loss_epoch(any_job) == metrics["evaluated_epoch"]
    spec = data.data_spec(str(prepared))
    tokens, _, features = next(iter(data.dataset(spec, "test", 64, with_features=(REVIEW_ID,))))
    ids = features[REVIEW_ID]
    model = models.BUILDERS[metrics["model"]](spec.vocab_size)
    model.load_weights(evaluated_weights(any_job))
    expected = model.predict(tokens, verbose=0).reshape(-1)

    texts = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False).set_index("Id")["Text"]
    raw = tf.constant([texts[str(i)] for i in ids.numpy()])
    loaded = tf.saved_model.load(latest_export(any_job))
    served = loaded.signatures["serving_default"](text=raw)
    np.testing.assert_allclose(served["probability"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(served["label"].numpy(), (expected >= 0.5).astype(np.int64))
    transformed = loaded.signatures["transform_features"](text=raw)
    np.testing.assert_array_equal(transformed[TOKENS].numpy(), tokens.numpy())


def tf_examples(texts: list[str]) -> tf.Tensor:
    return tf.constant([tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts])


@pytest.mark.parametrize("signature", ["serving_default", "serve_tf_example", "trainer.predict", "server"])
def test_a_review_scores_the_same_alone_and_among_long_reviews(any_job, synthetic_csv, signature):
    export_dir = latest_export(any_job)
    stack = contextlib.ExitStack()
    if signature == "trainer.predict":  # loaded as trainer.predict loads it, once
        serving_fn = predict.loaded_signature(export_dir)
        score = lambda texts: [p for p, _ in predict.scored(serving_fn, texts)]  # noqa: E731
    elif signature == "server":  # one review a request, sent at once: the server batches them together
        httpd = stack.enter_context(serving_at(model=export_dir, batching=BatchingOptions(batch_timeout_s=0.2)))
        one = lambda text: http_json(httpd, "POST", "/predict", {"instances": [text]})[1]["predictions"][0]["probability"]  # noqa: E731
        score = lambda texts: concurrently(one, texts)  # noqa: E731
    else:
        loaded = tf.saved_model.load(export_dir)
        score = {
            "serving_default": lambda texts: loaded.signatures["serving_default"](text=tf.constant(texts))["probability"].numpy(),
            "serve_tf_example": lambda texts: loaded.signatures["serve_tf_example"](examples=tf_examples(texts))["probability"].numpy(),
        }[signature]
    reviews = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False)["Text"].tolist()
    texts = [t for t in reviews if len(t.split()) < 15][:12] + ["Great.", "The box was smaller than expected but my dog loves it."]
    long_texts = [" ".join(reviews[i:i + 8]) for i in (0, 40)]  # far past TINY_LENGTH words
    with stack:
        alone, among_long, reversed_request = scored_alone_and_among_long_reviews(score, texts, long_texts)
    np.testing.assert_allclose(among_long, alone, atol=1e-5, rtol=0)
    np.testing.assert_allclose(reversed_request, alone, atol=1e-5, rtol=0)
    assert np.ptp(alone) > 1e-3  # the reviews do get different scores


@pytest.mark.parametrize("name", NEW_MODELS)
def test_each_new_model_records_its_recipe_and_layers_and_predict_and_score_agree(new_model_jobs, name, synthetic_csv, tmp_path):
    job = new_model_jobs[name]
    metrics = json.loads((job / "metrics.json").read_text())
    recipe = recipes.RECIPES[name]
    assert (metrics["model"], metrics["learning_rate"], metrics["optimizer"]) == (name, recipe.learning_rate, recipe.optimizer_name)
    assert metrics["best_epoch_by"] == recipe.best_epoch_by and metrics["epochs_requested"] == 2
    assert metrics["early_stopping_patience"] == recipe.early_stopping_patience
    assert {"params", "seconds_per_epoch", "examples_per_second", "test_f1_negative", "test_macro_f1"} <= set(metrics)
    assert {"bilstm": "Bidirectional(LSTM(64))", "fasttext": "mean of Embedding(", "tfidf": "TF-IDF (train idf"}[name] in metrics["architecture"]
    export_dir = latest_export(job)
    reviews = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False).head(20)
    texts = reviews["Text"].tolist()
    served = tf.saved_model.load(export_dir).signatures["serving_default"](text=tf.constant(texts))["probability"].numpy()
    np.testing.assert_allclose([p for p, _ in predict.scored(predict.loaded_signature(export_dir), texts)], served, atol=1e-6)
    reviews.to_csv(tmp_path / "in.csv", index=False)
    assert run_main("pipelines.score", "--model", export_dir, "--input", str(tmp_path / "in.csv"),
                      "--output", str(tmp_path / "s")).returncode == 0
    scored = pd.concat(pd.read_csv(f, dtype={"Id": str}) for f in tmp_path.glob("s-0*.csv")).set_index("Id")
    np.testing.assert_allclose(scored.loc[reviews["Id"], "probability"], served, atol=1e-5)


def features_of(tokens: np.ndarray, vocab_size: int, buckets: int) -> set:
    """A review's n-gram feature ids, written out plainly (no keras.ops)."""
    words = [int(t) for t in tokens if t != 0]
    return set(words) | {vocab_size + (a * vocab_size + b) % buckets for a, b in zip(words, words[1:])}


def test_tfidf_idf_is_the_train_splits_document_frequency_counted_independently(new_model_jobs, prepared):
    spec = data.data_spec(str(prepared))
    model = models.BUILDERS["tfidf"](spec.vocab_size)
    model.load_weights(evaluated_weights(new_model_jobs["tfidf"]))
    frequency, documents = {}, 0
    for tokens, _ in data.dataset(spec, "train", 256):
        for row in tokens.numpy():
            documents += 1
            for feature in features_of(row, spec.vocab_size, models.TFIDF_BUCKETS):
                frequency[feature] = frequency.get(feature, 0) + 1
    assert documents == spec.examples["train"]
    idf = np.asarray(model.get_layer("tfidf_logit").idf)
    kept = {f: df for f, df in frequency.items() if df >= 2}
    assert np.count_nonzero(idf) == len(kept) > 100
    for feature, df in list(kept.items())[:500]:
        assert abs(idf[feature] - (np.log((1 + documents) / (1 + df)) + 1)) < 1e-5


def test_tfidf_serving_uses_the_train_statistics(new_model_jobs, prepared, tmp_path):
    """Changing nothing but the idf changes the served scores; the job's own idf reproduces them."""
    from trainer import export
    import tensorflow_transform as tft

    job = new_model_jobs["tfidf"]
    texts = tf.constant(["Delicious, fresh and cheap: will buy again.", "Stale, bland and a waste of money.",
                         "The box was smaller than expected but my dog loves it."])
    served = tf.saved_model.load(latest_export(job)).signatures["serving_default"](text=texts)["probability"].numpy()
    spec = data.data_spec(str(prepared))
    model = models.BUILDERS["tfidf"](spec.vocab_size)
    model.load_weights(evaluated_weights(job))
    idf = model.get_layer("tfidf_logit").idf

    def exported_scores(name):
        export_dir = export.export_model(model, tft.TFTransformOutput(str(prepared)), str(tmp_path / name))
        return tf.saved_model.load(export_dir).signatures["serving_default"](text=texts)["probability"].numpy()

    np.testing.assert_allclose(exported_scores("same"), served, atol=1e-6)
    idf.assign(np.where(np.asarray(idf) > 0, 1.0, 0.0).astype("float32"))  # every kept feature weighs the same
    logit = lambda p: np.log(p.astype(np.float64) / (1 - p.astype(np.float64)))  # noqa: E731 (scores may be near 1)
    assert np.max(np.abs(logit(exported_scores("flat_idf")) - logit(served))) > 0.01


def test_bucketed_export_takes_raw_text_of_any_length(bucketed_job):
    metrics = json.loads((bucketed_job / "metrics.json").read_text())
    assert metrics["bucket_by_length"] is True
    assert metrics["dtype_policy"] == task.dtype_policy(True)  # bf16 on a bf16 GPU, float32 elsewhere
    loaded = tf.saved_model.load(latest_export(bucketed_job))
    one = loaded.signatures["serving_default"](text=tf.constant(["word " * 1000]))["probability"].numpy()
    assert one.shape == (1,) and 0 <= one[0] <= 1


@pytest.mark.slow
def test_mirrored_strategy_trains_bucketed_batches(prepared, tmp_path):
    result = run_module("trainer.task", "--data", str(prepared), "--job-dir", str(tmp_path / "job"), "--strategy", "mirrored",
                        "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "32")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy with 1 replicas" in result.stderr and "length-bucketed" in result.stderr
    # Bucketed batches come in many widths: one trace serves them all, and Keras knows the validation size.
    assert "retracing" not in result.stderr and "ran out of data" not in result.stderr
    metrics = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert metrics["bucket_by_length"] is True and metrics["epochs"] == 1


def test_dtype_policy_is_float32_without_a_bf16_gpu():
    assert task.dtype_policy(False) == "float32"
    if not tf.config.list_physical_devices("GPU"):
        assert task.dtype_policy(True) == "float32"


def test_tf_example_signature_matches_raw_text_signature(trained_job):
    loaded = tf.saved_model.load(latest_export(trained_job))
    texts = ["Delicious, will buy again", "Stale and awful, never again"]
    by_example = loaded.signatures["serve_tf_example"](examples=tf_examples(texts))["probability"].numpy()
    by_text = loaded.signatures["serving_default"](text=tf.constant(texts))["probability"].numpy()
    np.testing.assert_allclose(by_example, by_text, atol=1e-6)


def expected_stop(val_losses: list[float], patience: int) -> int:
    """The epoch (1-based) at which `patience` epochs without a new lowest val_loss end training, else the last."""
    best = 1
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < val_losses[best - 1]:
            best = epoch
        elif epoch - best >= patience:
            return epoch
    return len(val_losses)


def test_last_epoch_is_evaluated_and_exported_without_restoring_the_best(prepared, synthetic_csv, tmp_path):
    job = tmp_path / "job"
    assert task.main(["--data", str(prepared), "--job-dir", str(job), "--epochs", "4", "--batch-size", "64",
                      "--steps-per-epoch", "3", "--learning-rate", "0.05", "--no-restore-best-weights",
                      "--early-stopping-patience", "1"]) == 0
    history = json.loads((job / "history.json").read_text())
    metrics = json.loads((job / "metrics.json").read_text())
    assert len(history) == metrics["epochs"] == expected_stop([e["val_loss"] for e in history], patience=1)
    assert metrics["evaluated_epoch"] == len(history) and metrics["best_epoch"] == lowest_val_loss_epoch(job)
    assert metrics["val_loss"] == history[-1]["val_loss"] and metrics["restore_best_weights"] is False

    model = models.BUILDERS["lstm1"](data.data_spec(str(prepared)).vocab_size)
    model.load_weights(str(job / "checkpoints" / "final.weights.h5"))
    texts = ["Delicious, will buy again", "Stale and awful, never again", "ok"]
    tokens = tf.saved_model.load(latest_export(job)).signatures["transform_features"](text=tf.constant(texts))[TOKENS]
    served = predict.scored(predict.loaded_signature(latest_export(job)), texts)
    np.testing.assert_allclose([p for p, _ in served], model.predict(tokens, verbose=0).reshape(-1), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("model, recipe_args", [("lstm1", ["--learning-rate", "0.01"]), ("bilstm", []), ("tfidf", []),
                                                ("fasttext", [])])
def test_metrics_json_equals_the_export_on_the_real_test_reviews(prepared_sample, shared_sample, tmp_path, model, recipe_args):
    """The test accuracy and AUC people quote are those of the model that is served, from raw text."""
    job = tmp_path / "job"
    assert task.main(["--data", str(prepared_sample), "--job-dir", str(job), "--model", model, "--epochs", "2",
                      "--batch-size", "256", "--steps-per-epoch", "4", *recipe_args]) == 0
    metrics = json.loads((job / "metrics.json").read_text())
    spec = data.data_spec(str(prepared_sample))
    ids = np.concatenate([f[REVIEW_ID].numpy() for _, _, f in data.dataset(spec, "test", 512, with_features=(REVIEW_ID,))])
    frame = pd.read_csv(shared_sample, dtype=str, keep_default_na=False).set_index("Id")
    texts, labels = frame.loc[[str(i) for i in ids], "Text"].tolist(), (frame.loc[[str(i) for i in ids], "Score"].astype(int) > 3).to_numpy()
    serve = predict.loaded_signature(latest_export(job))
    scored = [s for start in range(0, len(texts), 100) for s in predict.scored(serve, texts[start:start + 100])]
    probabilities = np.array([p for p, _ in scored])
    served_accuracy = float(np.mean((probabilities >= 0.5) == labels))

    assert metrics["test_examples"] == len(texts)
    assert abs(served_accuracy - metrics["test_accuracy"]) * len(texts) <= 1  # to one example
    ranks = pd.Series(probabilities).rank().to_numpy()  # Mann-Whitney AUC, written independently of evaluation.auc_of
    positives = labels.sum()
    served_auc = (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * (len(labels) - positives))
    assert abs(served_auc - metrics["test_auc"]) <= 1e-3
    served_f1_negative = 2 * np.sum((probabilities < 0.5) & ~labels) / (np.sum(probabilities < 0.5) + np.sum(~labels))
    assert abs(served_f1_negative - metrics["test_f1_negative"]) <= 0.01  # one flipped review moves it less


def test_finished_job_is_refused_without_overwrite(trained_job, prepared, capsys):
    assert task.main(["--data", str(prepared), "--job-dir", str(trained_job), "--epochs", "1"]) == 2
    assert "already holds a finished run; pass --overwrite" in capsys.readouterr().err


def test_overwrite_refuses_to_delete_data_inside_the_job_dir(trained_job, prepared, tmp_path, capsys):
    job = tmp_path / "job"
    shutil.copytree(trained_job, job)
    data_inside = job / "prep"
    shutil.copytree(prepared, data_inside)
    assert task.main(["--data", str(data_inside), "--job-dir", str(job), "--overwrite", "--epochs", "1"]) == 2
    assert "--overwrite would delete --data" in capsys.readouterr().err
    assert (data_inside / "report.json").exists() and (job / "metrics.json").exists()


def test_data_without_transform_output_is_a_one_line_error(tmp_path):
    result = run_main("trainer.task", "--data", str(tmp_path), "--job-dir", str(tmp_path / "job"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("trainer: error:") and "Traceback" not in result.stderr


def test_tfrecords_not_matching_the_feature_spec_are_a_one_line_error(prepared, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    for path in (copy / "val").glob("*.tfrecord.gz"):
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            example = tf.train.Example(features=tf.train.Features(feature={
                "tokens": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}))
            writer.write(example.SerializeToString())
    assert task.main(["--data", str(copy), "--job-dir", str(tmp_path / "job")]) == 2
    assert "val TFRecords do not match the transformed feature spec" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_tfrecord_file_is_a_one_line_error_naming_it(prepared, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    victim = sorted((copy / "train").glob("*.tfrecord.gz"))[-1]  # not the first file: the first batch still parses
    data_bytes = bytearray(victim.read_bytes())
    if damage == "truncated":  # a cut at a record boundary is read by TensorFlow without an error: counted instead
        data_bytes = data_bytes[: len(data_bytes) // 2]
    else:
        data_bytes[len(data_bytes) // 2: len(data_bytes) // 2 + 64] = b"\x00" * 64
    victim.write_bytes(bytes(data_bytes))
    result = run_main("trainer.task", "--data", str(copy), "--job-dir", str(tmp_path / "job"), "--epochs", "1",
                        "--steps-per-epoch", "2", "--batch-size", "32")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("trainer: error: ") and f"{victim} is damaged" in last and last.endswith("rerun pipelines.preprocess")


def test_a_shard_cut_at_a_record_boundary_is_found_by_counting(prepared, tmp_path):
    """TensorFlow reads such a file without an error; only the count tells."""
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    victim = sorted((copy / "val").glob("*.tfrecord.gz"))[-1]
    records = list(tf.data.TFRecordDataset(str(victim), compression_type="GZIP").as_numpy_iterator())
    with tf.io.TFRecordWriter(str(victim), options="GZIP") as writer:  # a whole file, one record short
        for record in records[:-1]:
            writer.write(record)
    spec = data.data_spec(str(copy))
    assert data.record_count_problem(spec) == (
        f"val holds {spec.examples['val'] - 1:,} records where report.json says {spec.examples['val']:,}: "
        "a file is missing or was replaced; rerun pipelines.preprocess")
    cut = bytearray(victim.read_bytes())[:-12]  # and now cut short: the gzip stream says which file
    victim.write_bytes(bytes(cut))
    assert f"{victim} is damaged" in (data.record_count_problem(spec) or "")


def test_vertex_ai_variables_choose_the_output_folders(monkeypatch):
    monkeypatch.setenv("AIP_MODEL_DIR", "gs://b/model")
    monkeypatch.setenv("AIP_CHECKPOINT_DIR", "gs://b/ckpt")
    monkeypatch.setenv("AIP_TENSORBOARD_LOG_DIR", "gs://b/tb")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    paths = task.job_paths("gs://b/job")
    assert (paths.export_root, paths.export_versioned, paths.checkpoints, paths.logs) == ("gs://b/model", False, "gs://b/ckpt", "gs://b/tb")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}))
    worker = task.job_paths("gs://b/job")
    assert not worker.is_chief and worker.root == "gs://b/job/.scratch-worker-0" and worker.export_root.startswith(worker.root)
    assert worker_shard() == (2, 1)  # the chief reads shard 0


def train_command(prepared, job, *extra) -> list[str]:
    return [sys.executable, "-m", "trainer.task", "--data", str(prepared), "--job-dir", str(job), "--batch-size", "32", *extra]


@pytest.mark.slow
def test_killed_run_resumes_at_the_interrupted_epoch(prepared, tmp_path):
    job = tmp_path / "job"
    command = train_command(prepared, job, "--epochs", "6", "--steps-per-epoch", "12")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history_path = job / "history.json"
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if history_path.exists() and len(json.loads(history_path.read_text() or "[]")) >= 2:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done = [e["epoch"] for e in json.loads(history_path.read_text())]
    assert 2 <= len(done) < 6 and not (job / "metrics.json").exists(), "the kill must land mid-training"

    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming at epoch {len(done) + 1}" in second.stderr
    history = json.loads(history_path.read_text())
    assert [e["epoch"] for e in history] == [1, 2, 3, 4, 5, 6]
    assert len({e["pid"] for e in history[: len(done)]}) == 1 and history[0]["pid"] != history[-1]["pid"]
    assert history[len(done)]["pid"] == history[-1]["pid"]  # epochs after the kill ran in the second process
    assert (job / "metrics.json").exists() and not list((job / "checkpoints").glob("backup*"))
    # The best epoch is the lowest validation loss over both processes' epochs, not only the second's.
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["best_epoch"] == metrics["evaluated_epoch"] == lowest_val_loss_epoch(job)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize("batching", ["--no-bucket-by-length", "--bucket-by-length"])
def test_two_workers_on_localhost_train_and_only_the_chief_exports(prepared, tmp_path, batching):
    job = tmp_path / "job"
    workers = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(subprocess.Popen(train_command(prepared, job, "--epochs", "2", "--steps-per-epoch", "3", batching),
                                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert "with 2 replicas" in outputs[0][1]
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["epochs"] == 2
    assert metrics["best_epoch"] == metrics["evaluated_epoch"] == lowest_val_loss_epoch(job)
    assert metrics["bucket_by_length"] == (batching == "--bucket-by-length")
    assert len(list((job / "export").iterdir())) == 1
    assert not list(job.glob(".scratch-*"))  # the non-chief's scratch folder is removed


def test_tuning_trials_write_under_their_own_directories(prepared, tmp_path, monkeypatch):
    job = tmp_path / "job"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(tmp_path / "hypertune" / "output.metrics"))
    for trial in ("1", "2"):  # the second trial is not blocked by the first one's finished run
        monkeypatch.setenv("CLOUD_ML_TRIAL_ID", trial)
        assert task.main(["--data", str(prepared), "--job-dir", str(job), "--epochs", "1", "--steps-per-epoch", "2",
                          "--batch-size", "32", "--learning-rate", str(0.01 * int(trial))]) == 0
    # (Each trial's writer lock, .N.lock, lies beside its directory: reviews/locks.py.)
    trials = sorted(p.name for p in (job / "trials").iterdir() if not p.name.startswith("."))
    assert trials == ["1", "2"] and not (job / "metrics.json").exists()
    for trial in ("1", "2"):
        assert json.loads((job / "trials" / trial / "metrics.json").read_text())["epochs"] == 1
    reported = [json.loads(line) for line in (tmp_path / "hypertune" / "output.metrics").read_text().splitlines()]
    assert reported[-1]["trial"] == "2" and "val_accuracy" in reported[-1]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "trainer: error: --epochs must be positive, got 0"),
    (["--steps-per-epoch", "0"], "trainer: error: --steps-per-epoch must be positive, got 0"),
    (["--batch-size", "0"], "trainer: error: --batch-size must be positive, got 0"),
    (["--lerning-rate", "0.1"], "trainer: error: unknown option --lerning-rate (did you mean --learning-rate?)"),
    (["--learning-rate", "100"], "trainer: error: --learning-rate must be greater than 0 and less than 100, got 100.0"),
    (["--early-stopping-patience", "-1"], "trainer: error: --early-stopping-patience must be 0 (never) or positive, got -1"),
])
def test_bad_options_are_one_line_errors(prepared, tmp_path, args, message):
    result = run_main("trainer.task", "--data", str(prepared), "--job-dir", str(tmp_path / "job"), *args)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "job").exists()


def test_each_model_gets_its_recipe_where_the_command_line_is_silent():
    base = ["--data", "d", "--job-dir", "j"]
    notebook = task.parsed_config(base)
    assert (notebook.model, notebook.epochs, notebook.batch_size, notebook.learning_rate, notebook.early_stopping_patience) == (
        "lstm1", 10, 2048, 1e-3, None)
    tfidf = task.parsed_config([*base, "--model", "tfidf"])
    assert (tfidf.epochs, tfidf.batch_size, tfidf.learning_rate, tfidf.early_stopping_patience) == (20, 256, 20.0, 3)
    chosen = task.parsed_config([*base, "--model", "tfidf", "--epochs", "4", "--batch-size", "64", "--learning-rate", "2",
                                 "--early-stopping-patience", "0"])
    assert (chosen.epochs, chosen.batch_size, chosen.learning_rate, chosen.early_stopping_patience) == (4, 64, 2.0, None)


def test_an_unfinished_run_of_another_model_is_not_resumed_as_this_one(prepared, tmp_path, capsys):
    job = tmp_path / "job"
    job.mkdir()
    (job / "run.json").write_text(json.dumps({"model": "tfidf", "data": str(prepared)}))  # as a killed tfidf run leaves it
    quick = ["--data", str(prepared), "--job-dir", str(job), "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "32"]
    assert task.main([*quick, "--model", "lstm1"]) == 2
    assert capsys.readouterr().err.strip() == (f"trainer: error: {job} already holds an unfinished run of --model tfidf; "
                                               "pass --overwrite to replace it (or rerun with --model tfidf to resume it)")
    assert task.main([*quick, "--model", "lstm1", "--overwrite"]) == 0
    assert json.loads((job / "run.json").read_text())["model"] == json.loads((job / "metrics.json").read_text())["model"] == "lstm1"


def test_a_job_dir_that_is_a_file_is_a_one_line_error(prepared, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert task.main(["--data", str(prepared), "--job-dir", str(a_file), "--epochs", "1"]) == 2
    assert "--job-dir" in capsys.readouterr().err and a_file.read_text() == "x"


# ---------------------------------------------------------------- faults at the edges

QUICK = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "32", "--no-evaluation"]


def unbalanced_copy(prepared, folder):
    """The data as a run that lost rows leaves it: its report.json says balanced: false."""
    data_dir = folder / "unbalanced"
    shutil.copytree(prepared, data_dir)
    report = json.loads((data_dir / "report.json").read_text())
    (data_dir / "report.json").write_text(json.dumps({**report, "balanced": False, "fates_total": report["rows_read"] - 1}))
    return data_dir


def test_data_whose_ledger_does_not_balance_is_refused_unless_allowed(prepared, tmp_path, capsys):
    data_dir = unbalanced_copy(prepared, tmp_path)
    job = tmp_path / "job"
    assert task.main(["--data", str(data_dir), "--job-dir", str(job), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", f"{data_dir}/report.json does not say balanced: true",
                          "--allow-unbalanced")
    assert not job.exists()  # refused before anything was written
    assert task.main(["--data", str(data_dir), "--job-dir", str(job), *QUICK, "--allow-unbalanced"]) == 0
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["allow_unbalanced"] is True and metrics["data_balanced"] is False


def test_balanced_data_is_recorded_as_such(trained_job):
    metrics = json.loads((trained_job / "metrics.json").read_text())
    assert metrics["data_balanced"] is True and metrics["allow_unbalanced"] is False


def test_a_second_trainer_on_the_same_job_dir_is_refused_naming_the_first(prepared, tmp_path, capsys):
    job = tmp_path / "job"
    with lock_holder(job) as holder:
        assert task.main(["--data", str(prepared), "--job-dir", str(job), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", f"{job} is being written by test holder (pid {holder.pid}")
    assert not job.exists()


def test_a_read_only_job_dir_is_a_one_line_error(prepared, tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        assert task.main(["--data", str(prepared), "--job-dir", str(read_only), *QUICK]) == 2
        assert_one_line_error(capsys.readouterr().err, "trainer", f"--job-dir {read_only}: read-only file system")
        assert task.main(["--data", str(prepared), "--job-dir", str(read_only / "job"), *QUICK]) == 2
        assert_one_line_error(capsys.readouterr().err, "trainer", str(read_only / "job"), "read-only file system")


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS"])
def test_a_checkpoint_write_that_fails_is_a_one_line_error(prepared, tmp_path, capsys, monkeypatch, errno_name):
    import errno

    import keras

    number = getattr(errno, errno_name)

    def failing_save(self, path, *args, **kwargs):
        raise OSError(number, os.strerror(number), path)

    monkeypatch.setattr(keras.Model, "save_weights", failing_save)
    job = tmp_path / "job"
    assert task.main(["--data", str(prepared), "--job-dir", str(job), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", f"cannot write --job-dir {job}: ",
                          "no space left on device" if errno_name == "ENOSPC" else "read-only file system")
    assert not (job / "metrics.json").exists()


def test_an_export_that_fails_midway_leaves_no_version_and_no_finished_job(prepared, tmp_path, capsys, monkeypatch):
    import errno

    real_save = tf.saved_model.save

    def save_then_fill_the_disk(module, export_dir, signatures=None):
        real_save(module, export_dir, signatures=signatures)
        raise OSError(errno.ENOSPC, "No space left on device")  # as if the profile's write found the disk full

    monkeypatch.setattr(tf.saved_model, "save", save_then_fill_the_disk)
    job = tmp_path / "job"
    assert task.main(["--data", str(prepared), "--job-dir", str(job), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", "no space left on device")
    assert not (job / "metrics.json").exists()
    assert [p.name for p in (job / "export").iterdir() if p.name.isdigit()] == []  # the gate and TF Serving take none


def test_the_free_space_guard_stops_before_a_checkpoint_that_would_not_fit(prepared, tmp_path, capsys, monkeypatch):
    from reviews import storage

    monkeypatch.setattr(storage, "free_bytes", lambda path: 100_000)  # less than one model's weights
    job = tmp_path / "job"
    assert task.main(["--data", str(prepared), "--job-dir", str(job), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", f"cannot write the checkpoints in {job}/checkpoints: "
                          "not enough free space (0.1 MiB free, about")
    assert not (job / "checkpoints" / "best.weights.h5").exists()


@pytest.mark.slow
def test_a_full_job_dir_is_a_one_line_error_not_a_crash(prepared, tmp_path):
    # The case that crashed with a segfault inside HDF5: a 3 MB disk fills while training.
    with mounted_tmpfs(tmp_path / "small", "3m") as small:
        for attempt in ("first", "rerun"):
            result = run_module("trainer.task", "--data", str(prepared), "--job-dir", str(small / "job"),
                                "--epochs", "4", "--steps-per-epoch", "2", "--batch-size", "32")
            assert result.returncode == 2, (attempt, result.returncode, result.stderr[-3000:])
            assert_one_line_error(result.stderr, "trainer", str(small / "job"))
            last = result.stderr.strip().splitlines()[-1]
            assert "not enough free space" in last or "no space left on device" in last, last
            assert not (small / "job" / "metrics.json").exists()


def test_a_failure_after_the_export_leaves_no_published_version(prepared, tmp_path, capsys, monkeypatch):
    import errno

    from trainer import artifacts

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts, "write_loss_plot", full_disk)  # written after the export, before metrics.json
    job = tmp_path / "job"
    assert task.main(["--data", str(prepared), "--job-dir", str(job), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", "no space left on device")
    assert not (job / "metrics.json").exists()
    assert [p.name for p in (job / "export").iterdir() if p.name.isdigit()] == []


def test_a_checkpoint_cut_short_by_a_kill_or_a_full_disk_does_not_block_the_rerun(prepared, tmp_path, capsys, monkeypatch):
    from trainer import artifacts

    real_end = artifacts.EpochRecorder.on_epoch_end

    def killed_after_first_epoch(self, epoch, logs=None):
        real_end(self, epoch, logs)
        raise KeyboardInterrupt  # after the epoch's checkpoints were saved

    job = tmp_path / "job"
    args = ["--data", str(prepared), "--job-dir", str(job), "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "32",
            "--no-evaluation"]
    monkeypatch.setattr(artifacts.EpochRecorder, "on_epoch_end", killed_after_first_epoch)
    assert task.main(args) == 130
    monkeypatch.setattr(artifacts.EpochRecorder, "on_epoch_end", real_end)
    backup = next((job / "checkpoints").glob("backup-*")) / "latest.weights.h5"
    for cut in (backup, job / "checkpoints" / "best.weights.h5"):
        cut.write_bytes(cut.read_bytes()[:96])  # what a kill -9 mid-save left
    assert task.main(args) == 0, capsys.readouterr().err
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["best_epoch"] in (1, 2)
    assert artifacts.readable_h5(str(job / "checkpoints" / "best.weights.h5"))


@pytest.mark.parametrize("content", ["", "{\"examples\": "])
def test_a_damaged_report_json_is_a_one_line_error(prepared, tmp_path, capsys, content):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared, data_dir)
    (data_dir / "report.json").write_text(content)
    assert task.main(["--data", str(data_dir), "--job-dir", str(tmp_path / "job"), *QUICK]) == 2
    assert_one_line_error(capsys.readouterr().err, "trainer", f"{data_dir}/report.json is damaged (not JSON")


@pytest.mark.parametrize("balanced", [None, "false", "true", 1])
def test_only_a_boolean_true_ledger_counts_as_balanced(prepared, tmp_path, capsys, balanced):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared, data_dir)
    report = json.loads((data_dir / "report.json").read_text())
    report.pop("balanced")
    if balanced is not None:
        report["balanced"] = balanced
    (data_dir / "report.json").write_text(json.dumps(report))
    assert task.main(["--data", str(data_dir), "--job-dir", str(tmp_path / "job"), *QUICK]) == 2
    assert "does not say balanced: true" in capsys.readouterr().err
