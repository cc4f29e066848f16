"""pipelines/drift.py: fixed-bin profiles and the population stability index."""
import math

import numpy as np
import pytest

from reviews import drift


def test_histogram_bins_by_lower_bounds_with_the_last_bin_open():
    bounds = drift.BINS["words_per_review"]  # 1, 5, 10, ... 640
    assert drift.histogram(np.array([1, 4, 5, 9, 10, 639, 640, 10_000]), bounds) == [2, 2, 1, 0, 0, 0, 0, 1, 2]
    # An OOV fraction of exactly 0.01 opens the second bin; 1.0 is in the last.
    assert drift.histogram(np.array([0.0, 0.0099, 0.01, 1.0]), drift.BINS["oov_fraction"]) == [2, 1, 0, 0, 0, 0, 1]


def test_counts_of_a_batch_and_merging_them_equal_the_counts_of_all():
    rng = np.random.default_rng(5)
    words, oov, scores = rng.integers(1, 900, 300), rng.random(300) ** 4, rng.random(300)
    labels = rng.integers(-1, 2, 300)  # -1: no label (Score 3)
    whole = drift.counts_of(words, oov, scores, labels)
    parts = drift.merged_counts([drift.counts_of(words[s], oov[s], scores[s], labels[s]) for s in (slice(0, 120), slice(120, 300))])
    assert parts == whole
    assert whole["labels"] == [int((labels == 0).sum()), int((labels == 1).sum())]
    assert sum(whole["score"]) == sum(whole["words_per_review"]) == 300


def test_psi_is_zero_for_equal_shares_and_matches_its_formula():
    assert drift.psi([10, 20, 70], [1, 2, 7]) == pytest.approx(0.0, abs=1e-12)
    expected, actual = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    by_hand = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected))
    assert drift.psi([50, 30, 20], [20, 30, 50]) == pytest.approx(by_hand, rel=1e-12)
    # An empty bin counts as 0.01 % instead of making the logarithm infinite.
    assert math.isfinite(drift.psi([100, 0], [50, 50]))


@pytest.mark.parametrize("value, band", [(0.05, "no significant change"), (0.1, "moderate change"),
                                         (0.2499, "moderate change"), (0.25, "significant shift")])
def test_bands_are_the_accepted_ones(value, band):
    assert drift.band(value) == band


def profile(words, oov, scores, labels=None):
    return drift.profile_of(drift.counts_of(np.array(words), np.array(oov), np.array(scores), labels), "test")


def test_drift_report_flags_a_significant_shift_and_compares_labels_only_where_both_have_them():
    rng = np.random.default_rng(0)
    training = profile(rng.integers(20, 200, 2000), rng.random(2000) * 0.05, rng.random(2000), rng.integers(0, 2, 2000))
    same = profile(rng.integers(20, 200, 1000), rng.random(1000) * 0.05, rng.random(1000))  # no labels
    report = drift.drift_report(training, same)
    assert report["drift"] is False and set(report["distributions"]) == {"words_per_review", "oov_fraction", "score", "no_words"}
    assert all(d["psi"] < 0.1 and d["psi"] < 3 * d["noise_floor"] + 0.01 for d in report["distributions"].values())

    short = profile(rng.integers(1, 8, 1000), rng.random(1000) * 0.05, rng.random(1000))
    report = drift.drift_report(training, short)
    assert report["drift"] is True and report["distributions"]["words_per_review"]["band"] == "significant shift"
    assert report["distributions"]["score"]["drift"] is False
    assert report["threshold"] == 0.25 and report["training"] == training and report["scoring"] == short
    assert drift.summary_line(report).startswith("DRIFT")


def test_noise_floor_is_what_sampling_alone_gives():
    """(bins - 1)(1/n + 1/m) is the expected PSI of two samples of one distribution."""
    rng = np.random.default_rng(1)
    values = [drift.psi(np.bincount(rng.integers(0, 10, 2000), minlength=10), np.bincount(rng.integers(0, 10, 500), minlength=10))
              for _ in range(200)]
    assert np.mean(values) == pytest.approx(9 * (1 / 2000 + 1 / 500), rel=0.2)


def test_oov_fraction_counts_the_oov_id_among_the_ids_read():
    tokens = np.array([[0, 0, 3, 9, 9], [0, 0, 0, 0, 0], [1, 2, 3, 4, 9]])
    np.testing.assert_allclose(drift.oov_fractions(tokens, oov_id=9), [2 / 3, 0.0, 1 / 5])


def test_a_share_of_reviews_without_words_drifts_and_nothing_read_is_no_verdict():
    rng = np.random.default_rng(2)
    training = profile(rng.integers(20, 200, 2000), rng.random(2000) * 0.05, rng.random(2000))
    scored = drift.counts_of(rng.integers(20, 200, 900), rng.random(900) * 0.05, rng.random(900), None, without_words=100)
    report = drift.drift_report(training, drift.profile_of(scored, "test"))
    assert report["distributions"]["no_words"]["drift"] is True and report["drift"] is True  # 10 % unscoreable
    assert report["distributions"]["words_per_review"]["drift"] is False
    nothing = drift.drift_report(training, drift.profile_of(drift.empty_counts(), "test"))
    assert nothing["drift"] is None and drift.summary_line(nothing) == "no drift check: no review was read"
