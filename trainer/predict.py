"""Score raw reviews with an exported model.

    python -m trainer.predict --model JOB/export/<version> "Great coffee!" "Stale and bland."
    python -m trainer.predict --model EXPORT --input reviews.txt     # one review a line, UTF-8

A review that cleans to no words (emoji, digits or HTML only) gets no score:
the line says so instead, as pipelines.score writes it to its rejected file.
"""
import re
import sys

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

from reviews import logs
from reviews.errors import one_line_errors
from reviews.exports import NO_WORDS, loaded_signature, scored
from trainer import TrainerError

UNDECODABLE = re.compile("[\udc80-\udcff]")


def input_lines(path: str) -> list[str]:
    """Non-blank lines of a UTF-8 file."""
    with open(path, encoding="utf-8-sig") as handle:  # a byte order mark is not part of the first review
        return [line.rstrip("\n") for line in handle if line.strip()]


@one_line_errors("predict")
def main(argv=None) -> int:
    parser = logs.OneLineParser(name="predict", prog="python -m trainer.predict", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="export directory (holds saved_model.pb)")
    parser.add_argument("--input", help="file with one review a line (UTF-8)")
    parser.add_argument("texts", nargs="*", help="reviews to score")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    args = parser.parse_args(argv)
    logs.configure(args.verbose)
    texts = list(args.texts)
    if args.input:
        try:
            texts += input_lines(args.input)
        except (OSError, UnicodeDecodeError) as error:
            raise TrainerError(f"cannot read --input {args.input}: {error}") from None
    if not texts:
        parser.error("give reviews as arguments or --input FILE")
    undecodable = next((t for t in texts if UNDECODABLE.search(t)), None)  # bytes argv could not decode
    if undecodable is not None:
        raise TrainerError(f"a review is not valid UTF-8: {undecodable.encode('utf-8', 'replace')[:60]!r}")
    serving_fn = loaded_signature(args.model)
    print("probability\tlabel\treview")
    for text, score in zip(texts, scored(serving_fn, texts)):
        if score is None:
            print(f"-\t{NO_WORDS}\t{text[:70]}  (no words after cleaning: not scored)")
            continue
        probability, label = score
        print(f"{probability:.4f}\t{'positive' if label == 1 else 'negative'}\t{text[:70]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
