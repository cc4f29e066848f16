"""Data profiles and drift: does the data a model scores still look like the
data it learnt from?

A profile is a few fixed-bin histograms of what the model sees and says: words
per review (after cleaning, before truncation), each review's out-of-vocabulary
fraction, the model's scores, the label balance where labels are known, and
how many reviews had no word at all (those get no score, so the other
histograms cannot see them).
The bins are fixed here, not fitted to any data, so profiles made at training
time and at scoring time compare bin by bin. trainer.task writes the profile of
the validation split into the export (held-out reviews of the training
period: the train split's own OOV fraction is near zero by construction, since
its words made the vocabulary); pipelines.score makes the same profile of what
it scores and compares the two.

The measure is the population stability index (PSI), the credit-scoring
standard for comparing a distribution with its reference:
PSI = Σ (actual% − expected%) · ln(actual% / expected%), with empty bins at
0.01 % so the logarithm stays finite. Its accepted bands (Siddiqi, "Credit Risk
Scorecards", 2006; used alike by the model-monitoring tools): below 0.1 no
significant change, 0.1 to 0.25 a moderate change, 0.25 and above a
significant shift. A distribution drifts at 0.25. Sampling alone gives a PSI
of about (bins − 1)·(1/n + 1/m) for n and m reviews: reported beside each
value as `noise_floor`, so a small scoring set is not mistaken for a change.

numpy only: Beam workers and the trainer use this module alike.
"""
import numpy as np

# Lower bounds of each bin; the last bin is open above.
BINS = {
    "words_per_review": (1, 5, 10, 20, 40, 80, 160, 320, 640),
    "oov_fraction": (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    "score": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
}
LABELS = ("negative", "positive")
WORDS_FOUND = ("with_words", "without_words")
DISTRIBUTIONS = (*BINS, "labels", "no_words")

DRIFT_PSI = 0.25
MODERATE_PSI = 0.1
EMPTY_BIN_SHARE = 1e-4
MEASURE = "population stability index"


def histogram(values: np.ndarray, lower_bounds) -> list[int]:
    """Counts per fixed bin; a value below the first bound joins the first bin."""
    index = np.searchsorted(np.asarray(lower_bounds, np.float64), np.asarray(values, np.float64), side="right") - 1
    return np.bincount(np.clip(index, 0, len(lower_bounds) - 1), minlength=len(lower_bounds)).tolist()


def empty_counts() -> dict:
    return {name: [0] * len(bounds) for name, bounds in BINS.items()} | {"labels": [0, 0], "no_words": [0, 0]}


def counts_of(num_words: np.ndarray, oov_fraction: np.ndarray, scores: np.ndarray, labels: np.ndarray | None,
              without_words: int = 0) -> dict:
    """Histogram counts of one batch of scored reviews (labels None, or -1 per
    review, where unknown) and of `without_words` reviews that had no word."""
    values = {"words_per_review": num_words, "oov_fraction": oov_fraction, "score": scores}
    counts = {name: histogram(values[name], bounds) for name, bounds in BINS.items()}
    known = np.zeros(0, np.int64) if labels is None else np.asarray(labels, np.int64)
    counts["labels"] = np.bincount(known[known >= 0], minlength=2)[:2].tolist()
    counts["no_words"] = [len(scores), without_words]
    return counts


def merged_counts(many) -> dict:
    merged = empty_counts()
    for counts in many:
        merged = {name: [a + b for a, b in zip(merged[name], counts[name])] for name in merged}
    return merged


def profile_of(counts: dict, source: str) -> dict:
    """The JSON profile: counts with their bins, and how many reviews made them."""
    reviews = sum(counts["score"])
    return {
        "source": source,
        "reviews": reviews,
        **{name: {"lower_bounds": list(bounds), "counts": counts[name]} for name, bounds in BINS.items()},
        "labels": dict(zip(LABELS, counts["labels"])),
        "no_words": dict(zip(WORDS_FOUND, counts["no_words"])),
    }


def profile_counts(profile: dict, name: str) -> list[int]:
    if name == "labels":
        return [profile["labels"][label] for label in LABELS]
    if name == "no_words":  # profiles from before it was counted: every profiled review had words
        found = profile.get("no_words", {"with_words": profile["reviews"], "without_words": 0})
        return [found[key] for key in WORDS_FOUND]
    return profile[name]["counts"]


def psi(expected: list[int], actual: list[int]) -> float:
    e = np.maximum(np.asarray(expected, np.float64) / max(sum(expected), 1), EMPTY_BIN_SHARE)
    a = np.maximum(np.asarray(actual, np.float64) / max(sum(actual), 1), EMPTY_BIN_SHARE)
    return float(np.sum((a - e) * np.log(a / e)))


def band(value: float) -> str:
    if value >= DRIFT_PSI:
        return "significant shift"
    return "moderate change" if value >= MODERATE_PSI else "no significant change"


def drift_report(training: dict, scoring: dict) -> dict:
    """Both profiles, each distribution's PSI with its band, and `drift`: whether
    any distribution shifted significantly. The labels are compared only where
    both sides have them; a file whose reviews all lack words is compared on
    that alone (and drifts)."""
    distributions = {}
    for name in DISTRIBUTIONS:
        expected, actual = profile_counts(training, name), profile_counts(scoring, name)
        if sum(expected) == 0 or sum(actual) == 0:
            continue
        value = psi(expected, actual)
        distributions[name] = {
            "psi": round(value, 4),
            "band": band(value),
            "drift": value >= DRIFT_PSI,
            "noise_floor": round((len(expected) - 1) * (1 / sum(expected) + 1 / sum(actual)), 4),
        }
    return {
        # None: nothing could be compared (no review was read).
        "drift": any(d["drift"] for d in distributions.values()) if distributions else None,
        "measure": MEASURE,
        "threshold": DRIFT_PSI,
        "bands": {"no significant change": f"< {MODERATE_PSI}", "moderate change": f"{MODERATE_PSI} to {DRIFT_PSI}",
                  "significant shift": f">= {DRIFT_PSI}"},
        "distributions": distributions,
        "training": training,
        "scoring": scoring,
    }


def summary_line(report: dict) -> str:
    """One line a person reads: which distributions moved, and how far."""
    parts = [f"{name} PSI {d['psi']:.2f} ({d['band']})" for name, d in report["distributions"].items()]
    if not parts:
        return "no drift check: no review was read"
    verdict = "DRIFT: the scored data does not look like the training data" if report["drift"] else "no drift"
    few = " (few reviews: see noise_floor)" if any(
        d["noise_floor"] >= MODERATE_PSI for d in report["distributions"].values()) else ""
    return f"{verdict}{few}: " + ", ".join(parts)


def oov_fractions(tokens: np.ndarray, oov_id: int) -> np.ndarray:
    """Per review: out-of-vocabulary ids among the word ids kept (padding is 0)."""
    words = np.count_nonzero(tokens, axis=1)
    return np.count_nonzero(tokens == oov_id, axis=1) / np.maximum(words, 1)
