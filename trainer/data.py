"""tf.data input from the preprocessing output directory.

Everything the trainer knows about the data comes from that directory:
vocabulary size and sequence length from the tf.Transform output, example
counts from report.json. Splits are streamed, never loaded into memory.
"""
import dataclasses
import json
import os

import tensorflow as tf
import tensorflow_transform as tft

from pipelines.transform import LABEL, TOKENS, model_vocabulary_size, sequence_length

SPLITS = ("train", "val", "test")


class DataError(Exception):
    """The data directory is not what pipelines.preprocess writes."""


@dataclasses.dataclass(frozen=True)
class DataSpec:
    data_dir: str
    vocab_size: int
    sequence_length: int
    feature_spec: dict
    examples: dict  # split -> count, from report.json

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(os.path.join(self.data_dir, split, "*.tfrecord.gz")))


def data_spec(data_dir: str) -> DataSpec:
    """Reads the contract written by pipelines.preprocess, or says what is missing."""
    if not tf.io.gfile.exists(os.path.join(data_dir, "transform_fn")):
        raise DataError(f"{data_dir} has no transform_fn/: run pipelines.preprocess first")
    report_path = os.path.join(data_dir, "report.json")
    if not tf.io.gfile.exists(report_path):
        raise DataError(f"{data_dir} has no report.json: the preprocessing run did not finish")
    with tf.io.gfile.GFile(report_path) as handle:
        examples = json.load(handle)["examples"]
    tft_output = tft.TFTransformOutput(data_dir)
    spec = DataSpec(
        data_dir=data_dir,
        vocab_size=model_vocabulary_size(tft_output),
        sequence_length=sequence_length(tft_output),
        feature_spec=tft_output.transformed_feature_spec(),
        examples=examples,
    )
    for split in SPLITS:
        if not spec.examples.get(split):
            raise DataError(f"split {split!r} in {data_dir} is empty (report.json says 0 examples)")
        if not spec.files(split):
            raise DataError(f"no {split}/*.tfrecord.gz files in {data_dir}")
    return spec


def features_and_label(serialized: tf.Tensor, feature_spec: dict):
    """One vectorized parse per batch: far cheaper than per-example parsing."""
    features = tf.io.parse_example(serialized, feature_spec)
    return features[TOKENS], tf.cast(features[LABEL], tf.float32)


def dataset(
    spec: DataSpec,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = False,
    repeat: bool = False,
    seed: int | None = None,
    shard_by_file: bool = True,
    with_ids: bool = False,
) -> tf.data.Dataset:
    """Batches of (tokens, label); or (tokens, label, review_id) with_ids.

    Under tf.distribute each worker reads its own files (auto-shard FILE), so
    files must outnumber workers; val/test use shard_by_file=False so every
    worker sees the same batches and metrics all-reduce to the true means.
    """
    files = tf.data.Dataset.from_tensor_slices(spec.files(split))
    if shuffle:
        files = files.shuffle(len(spec.files(split)), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle,
    )
    if shuffle:
        records = records.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()
    batches = records.batch(batch_size, drop_remainder=False)
    if with_ids:
        parse = lambda s: (*features_and_label(s, spec.feature_spec), tf.io.parse_example(s, spec.feature_spec)["review_id"])  # noqa: E731
    else:
        parse = lambda s: features_and_label(s, spec.feature_spec)  # noqa: E731
    batches = batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.FILE if shard_by_file else tf.data.experimental.AutoShardPolicy.OFF
    )
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)
