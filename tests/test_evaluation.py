import itertools

import numpy as np
import pandas as pd
import pytest

from trainer import evaluation
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


def scored_reviews(n=600, seed=2):
    """Real-shaped predictions: 84 % positive, overlapping scores, ties, lengths and years."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.84).astype(np.int64)
    probabilities = np.round(np.clip(0.55 + 0.3 * labels + rng.normal(0, 0.18, n), 0, 1), 3).astype(np.float32)
    times = rng.integers(946_684_800, 1_351_728_000, n)  # 2000-01-01 .. 2012-11-01
    return {"label": labels, "probability": probabilities, "num_words": rng.integers(1, 700, n), "time": times,
            "review_id": np.arange(n)}


def test_the_chosen_threshold_maximises_macro_f1_over_every_cut_of_the_scores():
    from sklearn.metrics import f1_score

    columns = scored_reviews()
    labels, probabilities = columns["label"], columns["probability"]
    threshold, macro = evaluation.macro_f1_threshold(labels, probabilities)
    at = lambda t: f1_score(labels, (probabilities >= t).astype(int), average="macro", labels=[0, 1], zero_division=0.0)  # noqa: E731
    assert at(threshold) == pytest.approx(macro, abs=1e-12)
    every_cut = [at(t) for t in np.unique(probabilities)] + [at(1.01)]
    assert macro == pytest.approx(max(every_cut), abs=1e-12) and macro > at(0.5)
    # Halfway between two scores: the same split of these reviews as the score above it.
    below = probabilities[probabilities < threshold].max()
    above = probabilities[probabilities >= threshold].min()
    assert threshold == pytest.approx((float(below) + float(above)) / 2, abs=1e-6)


def test_threshold_table_equals_scikit_learn_at_every_threshold():
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    columns = scored_reviews()
    labels, probabilities = columns["label"], columns["probability"]
    table = evaluation.threshold_table(labels, probabilities, chosen=0.6789)
    assert [row["threshold"] for row in table] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6789, 0.7, 0.8, 0.9]
    for row in table:
        predicted = (probabilities >= row["threshold"]).astype(int)
        assert row["accuracy"] == accuracy_score(labels, predicted)
        for label, name in enumerate(("negative", "positive")):
            precision = precision_score(labels, predicted, pos_label=label, zero_division=0.0)
            recall = recall_score(labels, predicted, pos_label=label, zero_division=0.0)
            assert row[name]["precision"] == pytest.approx(precision) and row[name]["recall"] == pytest.approx(recall)
            f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
            assert row[name]["f1"] == pytest.approx(f1) and row[name]["support"] == int((labels == label).sum())


def test_slices_partition_the_split_and_each_has_its_own_metrics():
    columns = scored_reviews()
    result = evaluation.slices(columns)
    for slicing in ("words_per_review", "year"):
        assert sum(s["examples"] for s in result[slicing].values()) == result["examples"] == len(columns["label"])
        assert sum(s["positive"] for s in result[slicing].values()) == int(columns["label"].sum())
    years = pd.to_datetime(columns["time"], unit="s").year
    for year, metrics in result["year"].items():
        inside = years == int(year)
        assert metrics["examples"] == int(inside.sum())
        assert metrics["accuracy"] == pytest.approx(float(((columns["probability"][inside] >= 0.5) == columns["label"][inside]).mean()))
    short = result["words_per_review"]["1-10 words"]
    assert short["examples"] == int((columns["num_words"] <= 10).sum())
    assert set(result["words_per_review"]["401+ words"]) == {"examples", "positive", "accuracy", "auc", "f1_negative"}


def test_calibration_bins_are_scikit_learns_and_weigh_the_error_by_reviews():
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    columns = scored_reviews()
    labels, probabilities = columns["label"], columns["probability"]
    result = evaluation.calibration(labels, probabilities)
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10)
    np.testing.assert_allclose([b["fraction_positive"] for b in result["bins"]], observed)
    np.testing.assert_allclose([b["mean_predicted"] for b in result["bins"]], predicted, rtol=1e-6)
    assert sum(b["examples"] for b in result["bins"]) == len(labels)
    # Each bin's reviews counted independently: right-closed intervals, as scikit-learn bins them.
    per_bin = pd.cut(probabilities, bins=np.linspace(0, 1, 11), include_lowest=True, right=True).value_counts()
    assert [b["examples"] for b in result["bins"]] == [int(n) for n in per_bin if n > 0]
    ece = sum(b["examples"] * abs(b["fraction_positive"] - b["mean_predicted"]) for b in result["bins"]) / len(labels)
    assert result["expected_calibration_error"] == pytest.approx(ece)
    assert result["brier_score"] == pytest.approx(brier_score_loss(labels, probabilities))
