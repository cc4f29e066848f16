#!/usr/bin/env bash
# Seconds per epoch of 233,068 examples (the notebook's train split) at batch 2048,
# lstm1 and lstm2, fixed length 400 and length-bucketed, float32 and mixed bf16,
# on a machine with a GPU. The notebook measured 152 s (lstm1) and 286 s (lstm2).
#
#   bash benchmarks/gpu.sh [ROWS]          # ROWS: size of the resampled copy (default 60000)
#
# The train split is smaller than 233,068 but repeats: --steps-per-epoch 114
# (= ceil(233068 / 2048)) makes each epoch the notebook's size. Epoch 2 is
# reported, epoch 1 includes tracing and cuDNN autotuning. Prints a Markdown
# table and writes benchmarks/results/gpu.json (and $OUT/gpu.json if set).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-60000}
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
$PY -c "import pipelines, trainer" 2>/dev/null || $PY -m pip install --quiet -e .
$PY - "$ROWS" <<'PY'
import json, os, subprocess, sys, pathlib
sys.path.insert(0, "benchmarks")
from common import WORK, default_input, resampled_csv, write_result
rows = int(sys.argv[1])
csv_path = resampled_csv(default_input(), rows)
prep = WORK / f"prep_gpu_{rows}"
if not (prep / "report.json").exists():
    subprocess.run([sys.executable, "-m", "pipelines.preprocess", "--input", str(csv_path), "--output", str(prep), "--overwrite"], check=True)
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(f"GPUs: {[tf.config.experimental.get_device_details(g).get('device_name') for g in gpus]}")
results = []
for model in ("lstm1", "lstm2"):
    for bucket in (False, True):
        for mixed in (False, True):
            job = WORK / f"gpu_{model}_{'b' if bucket else 'f'}_{'bf16' if mixed else 'fp32'}"
            subprocess.run([sys.executable, "-m", "trainer.task", "--data", str(prep), "--job-dir", str(job), "--overwrite",
                            "--model", model, "--epochs", "2", "--batch-size", "2048", "--steps-per-epoch", "114",
                            "--bucket-by-length" if bucket else "--no-bucket-by-length",
                            "--mixed-precision" if mixed else "--no-mixed-precision"], check=True,
                           stdout=subprocess.DEVNULL)
            history = json.loads((job / "history.json").read_text())
            metrics = json.loads((job / "metrics.json").read_text())
            results.append({"model": model, "bucketed": bucket, "dtype_policy": metrics["dtype_policy"],
                            "seconds_epoch_2": history[-1]["seconds"], "val_accuracy": history[-1]["val_accuracy"]})
            print(results[-1], flush=True)
print("| model | batches | dtype | s / epoch of 233,068 | val accuracy |\n|---|---|---|---|---|")
for r in results:
    print(f"| {r['model']} | {'bucketed' if r['bucketed'] else 'fixed 400'} | {r['dtype_policy']} | {r['seconds_epoch_2']:.1f} | {r['val_accuracy']:.4f} |")
path = write_result("gpu", {"rows": rows, "gpus": len(gpus), "results": results})
if os.environ.get("OUT"):
    pathlib.Path(os.environ["OUT"], "gpu.json").write_text(path.read_text())
PY
