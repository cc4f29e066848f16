import itertools

import numpy as np

from trainer.evaluation import auc_of, binary_metrics


def brute_force_auc(labels, probabilities):
    pairs = [(p, n) for p, n in itertools.product(probabilities[labels == 1], probabilities[labels == 0])]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    probabilities = np.round(rng.random(300) * 0.5 + labels * 0.3, 2)  # rounding makes ties
    assert abs(auc_of(labels, probabilities) - brute_force_auc(labels, probabilities)) < 1e-12


def test_auc_undefined_with_one_class():
    assert auc_of(np.ones(4, int), np.linspace(0, 1, 4)) is None


def test_binary_metrics_on_a_worked_example():
    labels = np.array([1, 1, 0, 0, 1])
    probabilities = np.array([0.9, 0.4, 0.6, 0.1, 0.8])
    metrics = binary_metrics(labels, probabilities)
    assert metrics["test_accuracy"] == 3 / 5
    assert metrics["test_precision"] == 2 / 3 and metrics["test_recall"] == 2 / 3
    expected_loss = -np.mean(np.log([0.9, 0.4, 0.4, 0.9, 0.8]))
    assert abs(metrics["test_loss"] - expected_loss) < 1e-9
    assert metrics["test_examples"] == 5 and metrics["test_auc"] == brute_force_auc(labels, probabilities)


def test_negative_class_and_macro_f1_on_the_worked_example():
    # Predicted 1,0,1,0,1 against 1,1,0,0,1: negatives TP 1 (4th), FP 1 (2nd), FN 1 (3rd).
    metrics = binary_metrics(np.array([1, 1, 0, 0, 1]), np.array([0.9, 0.4, 0.6, 0.1, 0.8]))
    f1_negative = 2 * 1 / (2 * 1 + 1 + 1)
    f1_positive = 2 * 2 / (2 * 2 + 1 + 1)
    assert abs(metrics["test_f1_negative"] - f1_negative) < 1e-12
    assert abs(metrics["test_macro_f1"] - (f1_negative + f1_positive) / 2) < 1e-12


def test_f1_of_a_model_that_never_predicts_negative_is_zero_for_that_class():
    metrics = binary_metrics(np.array([1, 1, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6]))
    assert metrics["test_f1_negative"] == 0.0
    assert abs(metrics["test_macro_f1"] - (2 * 3 / (2 * 3 + 1)) / 2) < 1e-12
