import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from reviews.contract import REVIEW_ID
from trainer import TrainerError, data
from tests.conftest import TINY_LENGTH


def test_spec_comes_from_the_transform_output(prepared):
    spec = data.data_spec(str(prepared))
    report = json.loads((prepared / "report.json").read_text())
    # Counted apart from the code under test: the vocabulary file's lines, plus padding and OOV.
    words = (prepared / "transform_fn" / "assets" / "words").read_text(encoding="utf-8").splitlines()
    assert spec.vocab_size == len(words) + 2 == report["vocabulary_size"] <= 600
    assert spec.sequence_length == TINY_LENGTH
    assert spec.examples == report["examples"]
    assert len(spec.files("train")) == 4


def test_dataset_streams_batches_of_tokens_and_labels(prepared):
    spec = data.data_spec(str(prepared))
    batches = list(data.dataset(spec, "val", 100).as_numpy_iterator())
    assert sum(len(labels) for _, labels in batches) == spec.examples["val"]
    tokens, labels = batches[0]
    assert tokens.shape == (100, TINY_LENGTH) and tokens.min() >= 0 and tokens.max() < spec.vocab_size
    assert set(labels.tolist()) <= {0.0, 1.0}


def test_missing_transform_output_is_a_data_error(tmp_path):
    with pytest.raises(TrainerError, match="no transform_fn"):
        data.data_spec(str(tmp_path))


def test_empty_split_is_a_data_error(prepared, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    report = json.loads((copy / "report.json").read_text())
    report["examples"]["val"] = 0
    (copy / "report.json").write_text(json.dumps(report))
    with pytest.raises(TrainerError, match="split 'val'.*empty"):
        data.data_spec(str(copy))


def test_each_worker_reads_its_own_files(prepared):
    spec = data.data_spec(str(prepared))
    ids = lambda shard: sorted(int(i) for _, _, batch in data.dataset(  # noqa: E731
        spec, "train", 256, worker_shard=shard, with_features=(REVIEW_ID,)) for i in batch[REVIEW_ID].numpy())
    first, second = ids((2, 0)), ids((2, 1))
    assert first and second and not set(first) & set(second)
    assert sorted(first + second) == ids((1, 0))
    with pytest.raises(TrainerError, match="4 files for 5 workers"):
        data.dataset(spec, "train", 8, worker_shard=(5, 4))


def test_cut_to_longest_keeps_the_right_hand_end():
    tokens = tf.constant([[0, 0, 0, 4, 5], [0, 0, 7, 8, 9], [0, 0, 0, 0, 0]], tf.int64)
    np.testing.assert_array_equal(data.cut_to_longest(tokens).numpy(), [[0, 4, 5], [7, 8, 9], [0, 0, 0]])
    np.testing.assert_array_equal(data.cut_to_longest(tf.zeros([2, 5], tf.int64)).numpy(), [[0], [0]])


def test_bucketed_batches_keep_every_example_and_group_similar_lengths(prepared):
    spec = data.data_spec(str(prepared))
    fixed = list(data.dataset(spec, "val", 32, with_features=(REVIEW_ID,)).as_numpy_iterator())
    bucketed = list(data.dataset(spec, "val", 32, with_features=(REVIEW_ID,), bucket_by_length=True).as_numpy_iterator())
    reviews = lambda batches: sorted(  # noqa: E731
        (int(i), tuple(t[t != 0])) for tokens, _, features in batches for t, i in zip(tokens, features[REVIEW_ID]))
    assert reviews(bucketed) == reviews(fixed)  # same reviews, same ids, nothing cut off
    widths = [tokens.shape[1] for tokens, _, _ in bucketed]
    assert max(widths) <= TINY_LENGTH and np.mean(widths) < 0.75 * TINY_LENGTH
    boundaries = [0, *data.bucket_boundaries(TINY_LENGTH), TINY_LENGTH]
    for tokens, _, _ in bucketed:
        lengths = (tokens != 0).sum(axis=1)
        bucket = lambda n: sum(n > b for b in boundaries[1:-1])  # noqa: E731
        assert len({bucket(n) for n in lengths}) == 1  # one length bucket per batch
        assert tokens.shape[1] == max(lengths.max(), 1)  # cut to its longest review
