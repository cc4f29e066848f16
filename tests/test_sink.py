import gzip
import struct

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.sink import SUFFIX, WriteExampleShards, masked_crc32c
from pipelines.runtime import LOCAL_RUNNER

SPEC = {"tokens": tf.io.FixedLenFeature([3], tf.int64), "review_id": tf.io.FixedLenFeature([], tf.int64)}


def transformed_batch(first_id: int, size: int):
    """Transformed features as the pipeline routes them to the sink: a RecordBatch."""
    ids = np.arange(first_id, first_id + size)
    tokens = pa.array([[0, i % 7, i % 5] for i in ids], type=pa.large_list(pa.int64()))
    review_id = pa.array([[i] for i in ids], type=pa.large_list(pa.int64()))
    return pa.RecordBatch.from_arrays([tokens, review_id], ["tokens", "review_id"])


def written_examples(files) -> dict[int, list]:
    data = tf.data.TFRecordDataset(files, compression_type="GZIP").map(lambda s: tf.io.parse_single_example(s, SPEC))
    return {int(e["review_id"]): e["tokens"].tolist() for e in data.as_numpy_iterator()}


def test_batches_become_gzip_tfrecords_spread_over_every_shard(tmp_path):
    batches = [transformed_batch(first, 40) for first in range(0, 200, 40)]  # 5 batches, 200 examples
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create(batches) | WriteExampleShards(str(tmp_path), "val", num_shards=8)
    files = sorted((tmp_path / "val").glob("*" + SUFFIX))
    assert [f.name for f in files] == [f"part-{i:05d}-of-00008{SUFFIX}" for i in range(8)]
    examples = written_examples([str(f) for f in files])
    assert sorted(examples) == list(range(200))
    assert examples[123] == [0, 123 % 7, 123 % 5]
    # Each batch is sliced over all 8 shards: 5 slices of 5 examples in each.
    assert [len(written_examples([str(f)])) for f in files] == [25] * 8


def test_a_single_small_batch_still_reaches_every_shard_it_can(tmp_path):
    # Training workers shard by file: a split of one batch must not land in one file.
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create([transformed_batch(0, 5)]) | WriteExampleShards(str(tmp_path), "test", num_shards=8)
    sizes = sorted(len(written_examples([str(f)])) for f in (tmp_path / "test").glob("*" + SUFFIX))
    assert sizes == [0, 0, 0, 1, 1, 1, 1, 1]


def test_shards_are_gzip_files_of_several_members_that_every_reader_reads(tmp_path):
    # Each slice is its own gzip member; Python's gzip reads the members as one
    # stream, and the records' framing checks out across member boundaries.
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create([transformed_batch(0, 30), transformed_batch(30, 3)]) | WriteExampleShards(str(tmp_path), "val", num_shards=4)
    total = 0
    for path in sorted((tmp_path / "val").glob("*" + SUFFIX)):
        data = gzip.decompress(path.read_bytes())  # raises on a broken member
        while data:
            (length,) = struct.unpack("<Q", data[:8])
            assert data[8:12] == masked_crc32c(data[:8]) and data[12 + length:16 + length] == masked_crc32c(data[12:12 + length])
            data, total = data[16 + length:], total + 1
    assert total == 33 == len(written_examples([str(f) for f in (tmp_path / "val").glob("*" + SUFFIX)]))


def test_a_shard_with_no_examples_is_an_empty_gzip_file(tmp_path):
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create([transformed_batch(0, 1)]) | WriteExampleShards(str(tmp_path), "test", num_shards=3)
    files = sorted((tmp_path / "test").glob("*" + SUFFIX))
    assert sorted(len(gzip.decompress(f.read_bytes())) > 0 for f in files) == [False, False, True]
