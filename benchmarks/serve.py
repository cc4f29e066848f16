"""Serving latency and throughput of the export: raw text → probability.

    python benchmarks/serve.py [--model EXPORT]     (default: the newest export under demo/ or benchmarks/work/)

p50/p99 latency of one review per call, and reviews/s in batches of 256, through
the loaded SavedModel's serving_default (transform graph + LSTM), in-process.
Targets on 2 cores: p50 <= 20 ms for one review, >= 2,000 reviews/s batched.
Writes benchmarks/results/serve.json.
"""
import argparse
import time

import numpy as np

from common import REPO, default_input, write_result


def newest_export() -> str:
    exports = [p for pattern in ("demo/jobs/*/export/*", "benchmarks/work/job_*/export/*") for p in REPO.glob(pattern)
               if (p / "saved_model.pb").exists()]
    if not exports:
        raise SystemExit("no export found: run `make demo` first or pass --model")
    return str(max(exports, key=lambda p: p.stat().st_mtime))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--single-calls", type=int, default=300)
    parser.add_argument("--batch-calls", type=int, default=20)
    args = parser.parse_args()
    import pandas as pd
    import tensorflow as tf

    export = args.model or newest_export()
    serve = tf.saved_model.load(export).signatures["serving_default"]
    texts = pd.read_csv(default_input(), dtype=str, keep_default_na=False, on_bad_lines="skip")["Text"].tolist()
    rng = np.random.default_rng(0)

    for _ in range(20):  # warm-up: tracing, thread pools
        serve(text=tf.constant([texts[0]]))
        serve(text=tf.constant(texts[:256]))
    latencies = []
    for i in rng.integers(0, len(texts), args.single_calls):
        started = time.perf_counter()
        serve(text=tf.constant([texts[i]]))["probability"].numpy()
        latencies.append(1000 * (time.perf_counter() - started))
    started = time.perf_counter()
    for _ in range(args.batch_calls):
        batch = [texts[i] for i in rng.integers(0, len(texts), 256)]
        serve(text=tf.constant(batch))["probability"].numpy()
    reviews_per_second = 256 * args.batch_calls / (time.perf_counter() - started)

    result = {"export": export, "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
              "batch_256_reviews_per_second": reviews_per_second}
    print(f"export {export}")
    print(f"  one review   p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms   (target p50 <= 20 ms)")
    print(f"  batch of 256 {reviews_per_second:,.0f} reviews/s               (target >= 2,000)")
    print(f"wrote {write_result('serve', result)}")


if __name__ == "__main__":
    main()
