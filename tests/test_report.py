import numpy as np
import pytest

from pipelines import report


def test_percentiles_from_histogram_equal_numpy_on_the_values():
    values = np.random.default_rng(1).integers(0, 500, 3001)
    got = report.percentiles_of(np.bincount(values))
    assert got == {f"p{p:g}": float(np.percentile(values, p)) for p in report.PERCENTILES}


def test_oov_rate_counts_the_last_id_among_non_padding_ids():
    tokens = np.array([0, 0, 0, 5, 6, 9, 9, 7, 9])  # V=10: OOV id is 9
    assert report.oov_rate(np.bincount(tokens), vocab_size=10) == 3 / 6


def test_report_sums_fates_into_rows_read_and_labels_per_split():
    stats = {s: {"label": np.array([2, 3]), "num_words": np.array([0, 4, 1]), "tokens": np.array([9, 5, 1])} for s in ("train", "val", "test")}
    fates = {"rejected:empty_text": 2, "neutral_dropped": 1, "duplicates_dropped": 1, "helpfulness_dropped": 0}
    no_words = {"train": 1}
    # 4 not kept + 1 with no words + 5 examples per split
    result = report.report_of(20, fates, no_words, stats, vocab_size=3, max_length=1)
    assert result["fates_total"] == 20 and result["balanced"] is True
    assert result["no_words_dropped"] == {"train": 1, "val": 0, "test": 0}
    for rows_read in (19, 21):  # a row lost, or one counted twice: the two counts disagree
        assert report.report_of(rows_read, fates, no_words, stats, vocab_size=3, max_length=1)["balanced"] is False
    assert result["examples"] == {"train": 5, "val": 5, "test": 5}
    assert result["labels"]["val"] == {"negative": 2, "positive": 3}
    assert result["truncated_fraction"] == 3 / 15  # per split, one review of 2 words > max_length 1


def test_the_report_is_refused_until_every_shard_is_written(tmp_path):
    # report.json marks a finished output: it waits for the shards' paths and counts them.
    written = [f"{tmp_path}/train/part-0000{i}-of-00002.tfrecord.gz" for i in range(2)]
    with pytest.raises(RuntimeError, match="2 TFRecord shards written, 6 expected"):
        list(report.write_report(None, output_dir=str(tmp_path), max_length=4, rows_read=0, fates={}, stats={},
                                 shards_written=written, num_shards=2))
    assert not (tmp_path / "report.json").exists()
