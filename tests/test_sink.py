import gzip
import struct

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.sink import EncodeExamplesFn, WriteExampleShards, WriteShardFn, masked_crc32c
from reviews.contract import SUFFIX
from pipelines.runtime import LOCAL_RUNNER

SPEC = {"tokens": tf.io.FixedLenFeature([3], tf.int64), "review_id": tf.io.FixedLenFeature([], tf.int64)}


def transformed_batch(first_id: int, size: int, split: str = "val"):
    """Transformed features as the pipeline routes them to the sink: (split, RecordBatch)."""
    ids = np.arange(first_id, first_id + size)
    tokens = pa.array([[0, i % 7, i % 5] for i in ids], type=pa.large_list(pa.int64()))
    review_id = pa.array([[i] for i in ids], type=pa.large_list(pa.int64()))
    return split, pa.RecordBatch.from_arrays([tokens, review_id], ["tokens", "review_id"])


def written_examples(files) -> dict[int, list]:
    data = tf.data.TFRecordDataset(files, compression_type="GZIP").map(lambda s: tf.io.parse_single_example(s, SPEC))
    return {int(e["review_id"]): e["tokens"].tolist() for e in data.as_numpy_iterator()}


def test_batches_become_gzip_tfrecords_spread_over_every_shard(tmp_path):
    batches = [transformed_batch(first, 40) for first in range(0, 200, 40)]  # 5 batches, 200 examples
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create(batches) | WriteExampleShards(str(tmp_path), num_shards=8, splits=["val"])
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
        _ = pipeline | beam.Create([transformed_batch(0, 5, "test")]) | WriteExampleShards(str(tmp_path), num_shards=8, splits=["test"])
    sizes = sorted(len(written_examples([str(f)])) for f in (tmp_path / "test").glob("*" + SUFFIX))
    assert sizes == [0, 0, 0, 1, 1, 1, 1, 1]


def test_shards_are_gzip_files_of_several_members_that_every_reader_reads(tmp_path):
    # Each slice is its own gzip member; Python's gzip reads the members as one
    # stream, and the records' framing checks out across member boundaries.
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create([transformed_batch(0, 30), transformed_batch(30, 3)]) | WriteExampleShards(str(tmp_path), num_shards=4, splits=["val"])
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
        _ = pipeline | beam.Create([transformed_batch(0, 1, "test")]) | WriteExampleShards(str(tmp_path), num_shards=3, splits=["test"])
    files = sorted((tmp_path / "test").glob("*" + SUFFIX))
    assert sorted(len(gzip.decompress(f.read_bytes())) > 0 for f in files) == [False, False, True]


def test_one_write_fills_every_split_and_leaves_no_partial_files(tmp_path):
    batches = [transformed_batch(0, 12, "train"), transformed_batch(12, 2, "val"), transformed_batch(14, 9, "train")]
    with TestPipeline(runner=LOCAL_RUNNER) as pipeline:
        _ = pipeline | beam.Create(batches) | WriteExampleShards(str(tmp_path), num_shards=3)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == sorted(
        [split for split in ("train", "val", "test")] + [f"{split}/part-{i:05d}-of-00003{SUFFIX}" for split in ("train", "val", "test") for i in range(3)])
    by_split = {split: written_examples([str(f) for f in (tmp_path / split).glob("*" + SUFFIX)]) for split in ("train", "val", "test")}
    assert sorted(by_split["train"]) == list(range(12)) + list(range(14, 23))
    assert sorted(by_split["val"]) == [12, 13] and by_split["test"] == {}


def test_small_batches_of_many_bundles_still_reach_every_shard():
    # On Dataflow a worker sees many small bundles: the shard rotation must go on across them.
    encode = EncodeExamplesFn(num_shards=8)
    encode.setup()
    shards = set()
    for first in range(0, 24, 3):  # 8 bundles of one 3-example batch
        encode.start_bundle()
        keyed = list(encode.process(transformed_batch(first, 3))) + [w.value for w in encode.finish_bundle()]
        shards |= {shard for (_, shard), _ in keyed}
    encode.teardown()
    assert shards == set(range(8))


def test_a_shard_that_fails_to_write_leaves_no_file_behind(tmp_path):
    def slices_then_failure():
        yield gzip.compress(b"")
        raise OSError("disk full")

    write = WriteShardFn(str(tmp_path), num_shards=2)
    with pytest.raises(OSError, match="disk full"):
        list(write.process((("val", 1), slices_then_failure())))
    assert list(tmp_path.rglob("*.*")) == []
