import json
import shutil

import pytest
import tensorflow as tf

from trainer import data
from tests.conftest import TINY_LENGTH


def test_spec_comes_from_the_transform_output(prepared):
    spec = data.data_spec(str(prepared))
    report = json.loads((prepared / "report.json").read_text())
    assert spec.vocab_size == report["vocabulary_size"] <= 600
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
    with pytest.raises(data.DataError, match="no transform_fn"):
        data.data_spec(str(tmp_path))


def test_empty_split_is_a_data_error(prepared, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    report = json.loads((copy / "report.json").read_text())
    report["examples"]["val"] = 0
    (copy / "report.json").write_text(json.dumps(report))
    with pytest.raises(data.DataError, match="split 'val'.*empty"):
        data.data_spec(str(copy))


def test_repeated_train_data_is_sharded_by_file_for_workers(prepared):
    spec = data.data_spec(str(prepared))
    options = data.dataset(spec, "train", 8, shuffle=True, repeat=True, seed=1).options()
    assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE
