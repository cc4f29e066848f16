"""Exact metrics, computed once over a whole split: the test metrics of
metrics.json and the statistics of the evaluation report (threshold table,
the threshold chosen on validation, slices, calibration).

Keras' streaming AUC bins probabilities into 200 thresholds; the test report
is the number people quote, so it is computed exactly from every prediction.
"""
import numpy as np
import tensorflow as tf
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, f1_score, precision_recall_fscore_support

from reviews.drift import oov_fractions
from reviews.contract import NUM_WORDS, TIME
from trainer.export import THRESHOLD

EPSILON = 1e-7  # Keras' clipping for binary cross-entropy


def auc_of(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic, ties sharing their average rank."""
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(probabilities, kind="mergesort")
    _, first, counts = np.unique(probabilities[order], return_index=True, return_counts=True)
    ranks = np.empty(len(labels))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray, prefix: str = "test_") -> dict:
    labels = labels.astype(np.int64)
    clipped = np.clip(probabilities.astype(np.float64), EPSILON, 1 - EPSILON)
    predicted = (probabilities >= THRESHOLD).astype(np.int64)
    true_pos = int(((predicted == 1) & (labels == 1)).sum())
    return {
        f"{prefix}loss": float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))),
        f"{prefix}accuracy": float((predicted == labels).mean()),
        f"{prefix}auc": auc_of(labels, probabilities),
        f"{prefix}precision": true_pos / max(int(predicted.sum()), 1),
        f"{prefix}recall": true_pos / max(int(labels.sum()), 1),
        # Accuracy mostly reflects the 84/16 class balance; these do not.
        f"{prefix}f1_negative": float(f1_score(labels, predicted, pos_label=0, zero_division=0.0)),
        f"{prefix}macro_f1": float(f1_score(labels, predicted, average="macro", labels=[0, 1], zero_division=0.0)),
        f"{prefix}examples": int(len(labels)),
    }


def predictions(model, batches: tf.data.Dataset, oov_id: int | None = None) -> dict[str, np.ndarray]:
    """Over a finite dataset of (tokens, label[, {feature: values}]) batches:
    `label`, `probability`, each feature the batches carry, and with `oov_id`
    each review's `oov_fraction` (of the ids the model reads)."""
    # One trace for every batch width (bucketed batches come in many).
    predict = tf.function(lambda tokens: model(tokens, training=False),
                          input_signature=[tf.TensorSpec([None, None], tf.int64)])
    columns: dict[str, list] = {}
    for tokens, label, *features in batches:
        batch = {"label": label.numpy(), "probability": np.asarray(predict(tokens), dtype=np.float32).reshape(-1)}
        batch.update({name: value.numpy() for name, value in (features[0] if features else {}).items()})
        if oov_id is not None:
            batch["oov_fraction"] = oov_fractions(tokens.numpy(), oov_id)
        for name, value in batch.items():
            columns.setdefault(name, []).append(value)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def predicted_at(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    return (probabilities >= threshold).astype(np.int64)


def macro_f1_threshold(labels: np.ndarray, probabilities: np.ndarray) -> tuple[float, float]:
    """(threshold, its macro-F1): the exact maximum over every distinct cut of
    the scores (positive at or above it). With 84 % positive reviews 0.5 is
    rarely the best cut for the minority class. The threshold returned lies
    halfway between the chosen score and the next lower one, so it splits these
    reviews the same way and new ones a little more evenly."""
    labels = labels.astype(np.int64)
    negated, group = np.unique(-probabilities.astype(np.float64), return_inverse=True)
    scores = -negated  # the distinct scores, highest first; group: each review's index among them
    # Cut k predicts positive the reviews of the k highest distinct scores (k = 0: none).
    tp = np.concatenate([[0.0], np.cumsum(np.bincount(group, weights=labels, minlength=len(scores)))])
    fp = np.concatenate([[0.0], np.cumsum(np.bincount(group, weights=1 - labels, minlength=len(scores)))])
    fn, tn = tp[-1] - tp, fp[-1] - fp
    f1_positive = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=2 * tp + fp + fn > 0)
    f1_negative = np.divide(2 * tn, 2 * tn + fn + fp, out=np.zeros_like(tn), where=2 * tn + fn + fp > 0)
    macro = (f1_positive + f1_negative) / 2
    k = int(np.argmax(macro))  # the first (highest) cut among equals
    if k == 0:
        threshold = np.nextafter(scores[0], np.inf)
    elif k == len(scores):
        threshold = scores[-1] / 2
    else:
        threshold = (scores[k - 1] + scores[k]) / 2
    return float(threshold), float(macro[k])


def class_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Precision, recall and F1 of each class at one threshold (scikit-learn's)."""
    predicted = predicted_at(probabilities, threshold)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=[0, 1], zero_division=0.0)
    row = {"threshold": float(threshold), "accuracy": float((predicted == labels).mean()) if len(labels) else None}
    for index, name in enumerate(("negative", "positive")):
        row[name] = {"precision": float(precision[index]), "recall": float(recall[index]), "f1": float(f1[index]),
                     "support": int(support[index])}
    row["macro_f1"] = (row["negative"]["f1"] + row["positive"]["f1"]) / 2
    return row


TABLE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def threshold_table(labels: np.ndarray, probabilities: np.ndarray, chosen: float | None = None) -> list[dict]:
    thresholds = sorted(set(TABLE_THRESHOLDS) | ({chosen} if chosen is not None else set()))
    return [class_metrics(labels, probabilities, t) for t in thresholds]


# Words per review (after cleaning, before padding): bands of the length slicing.
LENGTH_BANDS = ((1, 10), (11, 25), (26, 50), (51, 100), (101, 200), (201, 400), (401, None))


def length_band(low: int, high: int | None) -> str:
    return f"{low}+ words" if high is None else f"{low}-{high} words"


def slice_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = THRESHOLD) -> dict:
    predicted = predicted_at(probabilities, threshold)
    return {
        "examples": int(len(labels)),
        "positive": int(labels.sum()),
        "accuracy": float((predicted == labels).mean()) if len(labels) else None,
        "auc": auc_of(labels, probabilities),
        "f1_negative": float(f1_score(labels, predicted, pos_label=0, labels=[0, 1], zero_division=0.0)),
    }


def year_of(unix_seconds: np.ndarray) -> np.ndarray:
    return unix_seconds.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970


def slices(columns: dict[str, np.ndarray], threshold: float = THRESHOLD) -> dict:
    """Metrics per review-length band and per year of the review: each slicing's
    slices partition the split (every review falls in exactly one)."""
    labels, probabilities = columns["label"].astype(np.int64), columns["probability"]
    words = columns[NUM_WORDS]
    by_length = {}
    for low, high in LENGTH_BANDS:
        inside = (words >= low) & (words <= (high if high is not None else np.iinfo(np.int64).max))
        if inside.any():
            by_length[length_band(low, high)] = slice_metrics(labels[inside], probabilities[inside], threshold)
    result = {"threshold": threshold, "examples": int(len(labels)), "words_per_review": by_length}
    if TIME in columns:
        years = year_of(columns[TIME])
        result["year"] = {str(year): slice_metrics(labels[years == year], probabilities[years == year], threshold)
                          for year in np.unique(years)}
    return result


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> dict:
    """Reliability in equal-width bins (scikit-learn's calibration_curve), the
    expected calibration error over them and the Brier score."""
    observed, predicted = calibration_curve(labels, probabilities, n_bins=bins, strategy="uniform")
    # Reviews per bin, binned as calibration_curve bins them (which drops empty bins).
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], probabilities), minlength=bins)
    counts = counts[counts > 0]
    return {
        "bins": [{"mean_predicted": float(p), "fraction_positive": float(o), "examples": int(n)}
                 for p, o, n in zip(predicted, observed, counts)],
        "expected_calibration_error": float(np.sum(counts * np.abs(observed - predicted)) / max(counts.sum(), 1)),
        "brier_score": float(brier_score_loss(labels, probabilities)),
    }
