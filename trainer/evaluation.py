"""Exact test-set metrics, computed once over the whole split.

Keras' streaming AUC bins probabilities into 200 thresholds; the test report
is the number people quote, so it is computed exactly from every prediction.
"""
import numpy as np
import tensorflow as tf
from sklearn.metrics import f1_score

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


def predictions(model, batches: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) over a finite dataset of (tokens, label) batches."""
    # One trace for every batch width (bucketed batches come in many).
    predict = tf.function(lambda tokens: model(tokens, training=False),
                          input_signature=[tf.TensorSpec([None, None], tf.int64)])
    labels, probabilities = [], []
    for tokens, label in batches:
        labels.append(label.numpy())
        probabilities.append(np.asarray(predict(tokens), dtype=np.float32).reshape(-1))
    return np.concatenate(labels), np.concatenate(probabilities)
