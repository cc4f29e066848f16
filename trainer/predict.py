"""Score raw reviews with an exported model.

    python -m trainer.predict --model JOB/export/<version> "Great coffee!" "Stale and bland."
    python -m trainer.predict --model EXPORT --input reviews.txt     # one review a line
"""
import argparse
import sys

import tensorflow as tf


def loaded_signature(export_dir: str, name: str = "serving_default"):
    return tf.saved_model.load(export_dir).signatures[name]


def scored(serving_fn, texts: list[str]) -> list[tuple[float, int]]:
    outputs = serving_fn(text=tf.constant(texts, dtype=tf.string))
    return list(zip(outputs["probability"].numpy().tolist(), outputs["label"].numpy().tolist()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.predict", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="export directory (holds saved_model.pb)")
    parser.add_argument("--input", help="file with one review a line")
    parser.add_argument("texts", nargs="*", help="reviews to score")
    args = parser.parse_args(argv)
    texts = list(args.texts)
    if args.input:
        try:
            with open(args.input, encoding="utf-8") as handle:
                texts += [line.rstrip("\n") for line in handle if line.strip()]
        except OSError as error:
            print(f"predict: error: cannot read --input: {error}", file=sys.stderr)
            return 2
    if not texts:
        parser.error("give reviews as arguments or --input FILE")
    if not tf.io.gfile.exists(f"{args.model}/saved_model.pb"):
        print(f"predict: error: {args.model} holds no saved_model.pb", file=sys.stderr)
        return 2
    serving_fn = loaded_signature(args.model)
    print("probability\tlabel\treview")
    for text, (probability, label) in zip(texts, scored(serving_fn, texts)):
        sentiment = "positive" if label == 1 else "negative"
        print(f"{probability:.4f}\t{sentiment}\t{text[:70]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
