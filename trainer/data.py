"""tf.data input from the preprocessing output directory.

Everything the trainer knows about the data comes from that directory:
vocabulary size and sequence length from the tf.Transform output, example
counts from report.json. Splits are streamed, never loaded into memory.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from reviews.contract import SUFFIX as TFRECORD_SUFFIX
from reviews.records import StreamDamage, decompressed_chunks
from reviews.contract import SPLITS
from reviews.contract import LABEL, REVIEW_ID, TOKENS, model_vocabulary_size, sequence_length
from trainer import TrainerError
from trainer.artifacts import read_json


@dataclasses.dataclass(frozen=True)
class DataSpec:
    data_dir: str
    vocab_size: int
    sequence_length: int
    feature_spec: dict
    examples: dict  # split -> count, from report.json
    balanced: bool = True  # report.json's ledger: every row read has a fate

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(os.path.join(self.data_dir, split, "*" + TFRECORD_SUFFIX)))


def data_spec(data_dir: str) -> DataSpec:
    """Reads the contract written by pipelines.preprocess, or says what is missing."""
    if not tf.io.gfile.exists(os.path.join(data_dir, "transform_fn")):
        raise TrainerError(f"{data_dir} has no transform_fn/: run pipelines.preprocess first")
    report = read_json(os.path.join(data_dir, "report.json"))
    if report is None:
        raise TrainerError(f"{data_dir} has no report.json: the preprocessing run did not finish")
    tft_output = tft.TFTransformOutput(data_dir)
    spec = DataSpec(
        data_dir=data_dir,
        vocab_size=model_vocabulary_size(tft_output),
        sequence_length=sequence_length(tft_output),
        feature_spec=tft_output.transformed_feature_spec(),
        examples=report["examples"],
        balanced=report.get("balanced") is True,  # missing or not a boolean: not known to balance
    )
    for split in SPLITS:
        if not spec.examples.get(split):
            raise TrainerError(f"split {split!r} in {data_dir} is empty (report.json says 0 examples)")
        if not spec.files(split):
            raise TrainerError(f"no {split}/*{TFRECORD_SUFFIX} files in {data_dir}")
    return spec


def count_of(elements: tf.data.Dataset) -> int:
    """Elements of a finite dataset, by one pass."""
    return int(elements.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def with_counted_batches(batches: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset with its number of batches declared, counted by one pass. Keras
    cannot know how many length-bucketed batches a finite split makes, and warns
    "input ran out of data" at the end of the first validation; the count (a
    few seconds for the validation split) tells it."""
    return batches.apply(tf.data.experimental.assert_cardinality(count_of(batches)))


def first_cut_gzip(paths: list[str]) -> str | None:
    """The first file whose gzip stream stops before its end or does not inflate.
    TensorFlow reads a GZIP TFRecord file that was cut at a record boundary
    without an error: its records are simply fewer."""
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as handle:
            try:
                for _ in decompressed_chunks(handle):
                    pass
            except StreamDamage:
                return path
    return None


def record_count_problem(spec: DataSpec) -> str | None:
    """Counts every split's records (one read without parsing: seconds at full
    size) against report.json, so a shard that was cut or removed is found
    before training rather than trained around."""
    for split in SPLITS:
        records = tf.data.TFRecordDataset(spec.files(split), compression_type="GZIP")
        try:
            count = count_of(records)
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
            count = None  # cut inside a record: TensorFlow does notice that one
        if count != spec.examples[split]:
            cut = first_cut_gzip(spec.files(split))
            where = f"{cut} is damaged" if cut else "a file is missing or was replaced"
            found = "does not read to its end" if count is None else f"holds {count:,} records"
            return f"{split} {found} where report.json says {spec.examples[split]:,}: {where}; rerun pipelines.preprocess"
    return None


def first_damaged_file(spec: DataSpec) -> tuple[str, str] | None:
    """(file, what is wrong) for the first TFRecord file that does not read and
    parse to the end: a full pass, run only after reading has failed, to name
    the file instead of showing TensorFlow's stack."""
    for split in SPLITS:
        for path in spec.files(split):
            records = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(4096)
            try:
                for batch in records:
                    tf.io.parse_example(batch, spec.feature_spec)
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as error:
                return path, str(error).strip().splitlines()[0][:200]
    return None


def features_and_label(serialized: tf.Tensor, feature_spec: dict, with_features: tuple[str, ...] = ()) -> tuple:
    """(tokens, label), or (tokens, label, {name: feature}) for the features
    asked for: one vectorized parse per batch, far cheaper than per-example parsing."""
    features = tf.io.parse_example(serialized, feature_spec)
    tokens, label = features[TOKENS], tf.cast(features[LABEL], tf.float32)
    return (tokens, label, {name: features[name] for name in with_features}) if with_features else (tokens, label)


def cut_to_longest(tokens: tf.Tensor) -> tf.Tensor:
    """Drops the padding columns every review of the batch has. Padding is in
    front and word ids are never 0, so keeping the last `longest` columns keeps
    every review whole; a batch of empty reviews keeps one column."""
    longest = tf.maximum(tf.reduce_max(tf.math.count_nonzero(tokens, axis=1)), 1)
    return tokens[:, tf.shape(tokens, out_type=tf.int64)[1] - longest:]


def bucket_boundaries(sequence_length: int) -> list[int]:
    """8, 16, 32, ... below the sequence length: reviews of similar length share batches."""
    boundaries, edge = [], 8
    while edge < sequence_length:
        boundaries.append(edge)
        edge *= 2
    return boundaries


def length_bucketed(examples: tf.data.Dataset, batch_size: int, sequence_length: int) -> tf.data.Dataset:
    """Unbatched (tokens, label, ...) → batches of similar length, each cut to its longest review."""
    boundaries = tf.constant(bucket_boundaries(sequence_length), tf.int64)

    def bucket(tokens, *_):
        return tf.reduce_sum(tf.cast(tf.math.count_nonzero(tokens) > boundaries, tf.int64))

    batches = examples.group_by_window(key_func=bucket, reduce_func=lambda _, w: w.batch(batch_size), window_size=batch_size)
    return batches.map(lambda tokens, *rest: (cut_to_longest(tokens), *rest), num_parallel_calls=tf.data.AUTOTUNE)


def split_features(spec: DataSpec, split: str, names: tuple[str, ...] = (REVIEW_ID,)) -> dict[str, np.ndarray]:
    """`label` and the named features of every example of a split, read back from its TFRecords."""
    columns: dict[str, list] = {"label": []}
    for _, label, features in dataset(spec, split, 4096, with_features=names):
        columns["label"].append(label.numpy().astype(np.int64))
        for name in names:
            columns.setdefault(name, []).append(features[name].numpy())
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def worker_files(spec: DataSpec, split: str, worker_shard: tuple[int, int] = (1, 0)) -> list[str]:
    """This worker's share of a split's files: every workers-th one."""
    workers, index = worker_shard
    files = spec.files(split)
    if index >= len(files):
        raise TrainerError(f"{split} has {len(files)} files for {workers} workers: rerun preprocess with more --num-shards")
    return files[index::workers]


def dataset(
    spec: DataSpec,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = False,
    repeat: bool = False,
    seed: int | None = None,
    worker_shard: tuple[int, int] = (1, 0),
    with_features: tuple[str, ...] = (),
    bucket_by_length: bool = False,
) -> tf.data.Dataset:
    """Batches of (tokens, label); or (tokens, label, {name: feature}) with_features
    (e.g. (REVIEW_ID,)).

    worker_shard (workers, index): this worker reads every workers-th file,
    so workers train on different data; tf.data's own auto-sharding is off
    (it cannot see through length bucketing). Val/test are not sharded: every
    worker sees the same batches and metrics all-reduce to the true means.
    bucket_by_length groups reviews of similar length and cuts each batch to
    its longest review, so the LSTM does not step through padding.
    """
    paths = worker_files(spec, split, worker_shard)
    files = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
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
    # Parsing stays vectorized: batch, parse, and only then regroup by length.
    batches = records.batch(min(batch_size, 1024) if bucket_by_length else batch_size, drop_remainder=False)
    batches = batches.map(lambda s: features_and_label(s, spec.feature_spec, with_features), num_parallel_calls=tf.data.AUTOTUNE)
    if bucket_by_length:
        batches = length_bucketed(batches.unbatch(), batch_size, spec.sequence_length)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)
