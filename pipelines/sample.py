"""A synthetic corpus in Kaggle's exact `Reviews.csv` format.

    python -m pipelines.sample --rows 20000 --output data/synthetic_reviews.csv

SYNTHETIC: the texts are generated, not real reviews. They carry the real
file's quirks so that the pipeline's handling of them is exercised: HTML
(`<br />`, links, `&quot;`), one review posted under several ProductIds,
neutral Score-3 rows, helpfulness numerator > denominator, quoted fields with
commas, `""` escapes and raw newlines, non-ASCII letters, and a few malformed
rows (missing columns, a non-integer or out-of-range Score, empty Text). The
score is predictable from the words, with noise, so a model can learn it.
"""
import csv
import dataclasses
import os
import random
import sys

from reviews import logs
from schemas import COLUMN_NAMES

POSITIVE = (
    "delicious", "love this", "great taste", "highly recommend", "my dog loves it", "perfect snack",
    "excellent quality", "best coffee I have had", "fresh and crunchy", "will buy again", "great value",
    "wonderful flavor", "the kids love them", "smooth and rich", "fantastic price",
)
NEGATIVE = (
    "terrible", "tasted stale", "would not buy again", "awful aftertaste", "waste of money",
    "arrived broken", "my dog refused to eat it", "way too salty", "disappointed", "not fresh",
    "horrible smell", "never again", "bland and watery", "not worth the price", "gave me a headache",
)
FILLER = (
    "I ordered this from Amazon", "the package arrived on time", "I bought a case of twelve",
    "we tried it with breakfast", "it comes in a resealable bag", "the ingredients list is short",
    "I compared it with the store brand", "my husband drinks it every morning", "the box was smaller than expected",
    "shipping took about a week", "I use it for baking", "the jalapeño flavor is strong",
    "it is made in the USA", "we keep it in the pantry", "I read the reviews before buying",
)
PRODUCTS = ("coffee", "tea", "dog food", "cookies", "chips", "hot sauce", "cereal", "candy", "pasta", "jerky")
SYLLABLES = ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "qui", "zor", "bel", "fen", "gra", "hu")
SCORE_WEIGHTS = (9, 5, 8, 14, 64)  # about the real file's 1..5 distribution
FIRST_DAY, LAST_DAY = 961718400, 1351209600  # 2000-06-23 .. 2012-10-26, 00:00 UTC


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    rows: int = 20000
    output: str = "data/synthetic_reviews.csv"
    seed: int = 7
    # Other reviews in the same pseudo-words as `seed`'s: new data to score with a model trained on them.
    reviews_seed: int | None = None


def pseudo_words(rng: random.Random, count: int = 30000) -> list[str]:
    """Sentiment-free words whose frequencies fall off like natural language
    (log-uniform rank), so the vocabulary cap and OOV rate mean something."""
    words = {"".join(rng.choice(SYLLABLES) for _ in range(rng.randrange(2, 5))) for _ in range(count * 2)}
    return sorted(words)[:count]


def zipf_word(rng: random.Random, words: list[str]) -> str:
    return words[int(len(words) ** rng.random()) - 1]


def review_text(rng: random.Random, score: int, words: list[str]) -> str:
    product = rng.choice(PRODUCTS)
    tone = POSITIVE if score >= 4 else NEGATIVE if score <= 2 else POSITIVE + NEGATIVE
    sentences = [f"This {product} is {rng.choice(tone)}"]
    # Long tail of lengths, like real reviews; a few run past the 400-id cut.
    for _ in range(min(int(rng.lognormvariate(1.3, 0.8)), 120)):
        pool = tone if rng.random() < 0.35 else FILLER
        if rng.random() < 0.08:  # noise: the other side's words
            pool = NEGATIVE if pool is POSITIVE else POSITIVE
        sentences.append(rng.choice(pool))
    sentences.append("Also " + " ".join(zipf_word(rng, words) for _ in range(1 + int(rng.lognormvariate(2.0, 0.9)))))
    rng.shuffle(sentences)
    separator = "<br /><br />" if rng.random() < 0.3 else ". "
    text = separator.join(s[0].upper() + s[1:] for s in sentences) + "."
    if rng.random() < 0.05:
        text = f"My wife said &quot;{rng.choice(tone)}&quot; and I agree. " + text
    if rng.random() < 0.03:
        text += ' See <a href="http://www.amazon.com/gp/product/B000E7VI7S">this one</a> too.'
    if rng.random() < 0.003:
        text = text.replace(". ", ".\n", 1)  # a raw newline inside a quoted field
    return text


def malformed_row(rng: random.Random, row: list) -> list:
    kind = rng.randrange(4)
    if kind == 0:
        return row[:8]  # missing columns
    if kind == 1:
        return row[:6] + ["five"] + row[7:]
    if kind == 2:
        return row[:6] + ["7"] + row[7:]
    return row[:9] + [""]


def sample_rows(config: SampleConfig):
    rng = random.Random(config.seed)
    words = pseudo_words(rng)
    if config.reviews_seed is not None:
        rng = random.Random(config.reviews_seed)
    products = [f"B00{rng.randrange(10**7):07d}" for _ in range(max(1, config.rows // 8))]
    users = [(f"A{rng.randrange(16**12):012X}", rng.choice(("Jo", 'Sam "Chef" Lee', "pat, tx", "Renée", "K"))) for _ in range(max(1, config.rows // 2))]
    row_id = 0
    while row_id < config.rows:
        score = rng.choices(range(1, 6), SCORE_WEIGHTS)[0]
        user_id, profile = rng.choice(users)
        denominator = rng.randrange(6)
        numerator = rng.randrange(denominator + 1)
        if rng.random() < 0.002:
            numerator = denominator + 1 + rng.randrange(3)  # as in a couple of real rows
        time = rng.randrange(FIRST_DAY, LAST_DAY, 86400)
        summary = rng.choice(POSITIVE if score >= 4 else NEGATIVE).capitalize()
        text = review_text(rng, score, words)
        # About 5% are posted again under other variants of the product, with new Ids.
        variants = 1 + (rng.random() < 0.05) * rng.randrange(1, 4)
        for product in rng.sample(products, min(variants, len(products))):  # a tiny sample has few products
            row_id += 1
            row = [str(row_id), product, user_id, profile, str(numerator), str(denominator), str(score), str(time), summary, text]
            yield malformed_row(rng, row) if rng.random() < 0.002 else row
            if row_id >= config.rows:
                return


def write_sample(config: SampleConfig) -> int:
    os.makedirs(os.path.dirname(config.output) or ".", exist_ok=True)
    with open(config.output, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMN_NAMES)
        count = 0
        for row in sample_rows(config):
            writer.writerow(row)
            count += 1
    return count


def main(argv=None) -> int:
    parser = logs.OneLineParser(name="sample", prog="python -m pipelines.sample", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=SampleConfig.rows)
    parser.add_argument("--output", default=SampleConfig.output)
    parser.add_argument("--seed", type=int, default=SampleConfig.seed)
    parser.add_argument("--reviews-seed", type=int, default=None,
                        help="other reviews in the same pseudo-words as --seed's (new data for a model trained on them)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    count = write_sample(SampleConfig(rows=args.rows, output=args.output, seed=args.seed, reviews_seed=args.reviews_seed))
    print(f"wrote {count:,} SYNTHETIC reviews in Kaggle Reviews.csv format to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
