"""benchmarks/gpu_pack.py and benchmarks/gpu_keras.py on CPU, on a few batches:
the GPU command must not fail for a reason a CPU run would have shown."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from trainer import models

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_keras  # noqa: E402
import gpu_pack  # noqa: E402


@pytest.fixture(scope="module")
def packed_data(prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "data"
    meta = gpu_pack.export_real_sample(prepared, out)
    return out, meta


def test_pack_exports_the_preprocessed_splits_as_npy(packed_data, prepared):
    out, meta = packed_data
    report = json.loads((prepared / "report.json").read_text())
    for split in ("train", "val"):
        tokens, labels = np.load(out / f"{split}_tokens.npy"), np.load(out / f"{split}_labels.npy")
        assert tokens.shape == (report["examples"][split], meta["sequence_length"]) == (meta[f"{split}_examples"], 48)
        assert set(np.unique(labels)) <= {0.0, 1.0} and tokens.min() >= 0 and tokens.max() < meta["vocab_size"]
        # Front padding, as in the TFRecords: no zero after a word.
        assert not np.any((tokens[:, :-1] != 0) & (tokens[:, 1:] == 0))
    lengths = np.load(out / "train_lengths.npy")
    np.testing.assert_array_equal(lengths, (np.load(out / "train_tokens.npy") != 0).sum(axis=1))


def test_bucketed_batches_use_few_widths_and_hold_every_review_whole():
    config = gpu_keras.BenchConfig(data="", out="", epoch_examples=64 * 20, batch_size=64)
    lengths = np.random.default_rng(0).integers(1, 400, size=500)
    batches = gpu_keras.epoch_batches(config, lengths, bucketed=True, rng=np.random.default_rng(1))
    assert len(batches) == 20 and all(b.shape[0] == 64 for b in batches)
    assert {b.shape[1] for b in batches} <= {8, 16, 32, 64, 128, 256, 400}
    fixed = gpu_keras.epoch_batches(config, lengths, bucketed=False, rng=np.random.default_rng(1))
    assert {b.shape for b in fixed} == {(64, 400)}
    assert gpu_keras.bucket_width(256, 400) == 256 and gpu_keras.bucket_width(257, 400) == 400


@pytest.mark.slow
def test_gpu_benchmark_runs_on_cpu_on_a_few_batches(packed_data, tmp_path):
    out, _ = packed_data
    result_path = tmp_path / "gpu.json"
    result = subprocess.run([sys.executable, "benchmarks/gpu_keras.py", "--data", str(out), "--out", str(result_path), "--steps", "2",
                             "--batch-size", "8", "--epoch-examples", "16", "--accuracy-epochs", "1"],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["environment"]["backend"] == "tensorflow" and "generic" in result["environment"]["lstm_implementation"]
    runs = [(r["model"], r["batches"], r["dtype_policy"]) for r in result["timing"]]
    assert runs[0] == ("lstm1", "fixed 400", "float32") and len(runs) == 14 and not result["skipped"]
    assert {model for model, _, _ in runs} == set(models.BUILDERS)
    assert all(r["seconds_epoch_2"] > 0 and r["steps_per_epoch"] == 2 for r in result["timing"])
    assert {r["params"] for r in result["timing"] if r["model"] == "lstm1"} == {693_301}
    assert {r["model"] for r in result["accuracy"]} == set(models.BUILDERS) - {"lstm2"}
    by_policy = {r["dtype_policy"]: r for r in result["accuracy"] if r["model"] == "lstm1"}
    assert set(by_policy) == {"float32", "mixed_bfloat16"}
    assert by_policy["float32"]["max_abs_diff_regrouped_vs_400"] <= 1e-5
    assert 0 <= by_policy["float32"]["val_accuracy"] <= 1


def test_a_spent_budget_skips_every_run_and_still_writes_results(packed_data, tmp_path):
    out, _ = packed_data
    path = tmp_path / "gpu.json"
    assert gpu_keras.main(["--data", str(out), "--out", str(path), "--budget-seconds", "0"]) == 0
    result = json.loads(path.read_text())
    assert result["timing"] == [] and len(result["skipped"]) == len(gpu_keras.planned_runs())
