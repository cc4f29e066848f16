"""Writing transformed examples: DIR/<split>/part-*.tfrecord.gz.

tf.Transform hands over RecordBatches of ~4000 examples. Each batch is encoded
to tf.Examples, cut into one slice per shard, and each slice is framed as
TFRecords and compressed into a gzip member of its own, right there. The
slices travel as Beam elements keyed by (split, shard): the shuffle that fills a fixed number of shards
then moves a few hundred compressed slices (about a tenth of the examples' bytes, which
are mostly padding) instead of ~100k examples, and the compression runs where
the transform runs, in parallel on several workers. A shard is its slices'
members back to back: a gzip file of several members, which gzip, Python and
TensorFlow's GZIP reader read as one stream. Consecutive slices go to
consecutive shards, so every shard gets a share of every batch: training
workers, which shard by file, all get data even when a split is a single batch.
All splits share one write.
"""
import collections
import concurrent.futures
import struct
import uuid
import zlib

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _default_crc32c_fn  # noqa: PLC2701 (Beam's choice of crc32c library)
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows
from tfx_bsl.public import tfxio

from reviews.contract import SPLITS, SUFFIX

GZIP_LEVEL = 6  # zlib's default: level 9 made the files 2 % smaller at twice the time


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
    return compressor.compress(data) + compressor.flush()


def masked_crc32c(data: bytes) -> bytes:
    crc = _default_crc32c_fn(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def framed(records) -> bytes:
    """TFRecord framing (as Beam's and TensorFlow's writers do it): length, its
    masked CRC-32C, the data, its masked CRC-32C."""
    parts = []
    for record in records:
        length = struct.pack("<Q", len(record))
        parts += (length, masked_crc32c(length), record, masked_crc32c(record))
    return b"".join(parts)


def compressed_records(records) -> bytes:
    """Serialized records → one gzip member of TFRecord frames."""
    return gzip_member(framed(records))


def shards_for(num_shards: int, reviews: int | None) -> int:
    """A split's shard count: --num-shards, but never more than the split has
    reviews (or 1), so that a large --num-shards on a small input does not
    write thousands of empty files. `reviews` None: not known, --num-shards."""
    return num_shards if reviews is None else max(1, min(num_shards, reviews))


def shards_of(split: str, num_shards: int, reviews_per_split: dict | None) -> int:
    """`split`'s shard count, given the reviews of every split (None: not known)."""
    return shards_for(num_shards, None if reviews_per_split is None else reviews_per_split.get(split, 0))


def shard_counts(num_shards: int, reviews_per_split: dict | None, splits=SPLITS) -> dict:
    return {split: shards_of(split, num_shards, reviews_per_split) for split in splits}


def shard_path(output_dir: str, split: str, shard: int, num_shards: int) -> str:
    return FileSystems.join(output_dir, split, f"part-{shard:05d}-of-{num_shards:05d}{SUFFIX}")


class EncodeExamplesFn(beam.DoFn):
    """(split, RecordBatch of transformed features) → ((split, shard), one
    compressed slice of its tf.Examples) for `num_shards` slices of about equal
    size (none empty). Each batch starts one shard further on than the one
    before it (in this DoFn instance, across bundles), so that small batches
    too spread over all shards.

    The slices are compressed on a thread of their own: zlib lets go of the
    GIL, so one batch is compressed while tf.Transform runs the graph on the
    next (on one worker, they would otherwise take turns)."""

    def __init__(self, num_shards: int, splits=SPLITS):
        self.num_shards = num_shards
        self.examples = {split: Metrics.counter("write", f"examples_{split}") for split in splits}

    def setup(self):
        # No schema needed: every transformed feature is a fixed-length list.
        self.encoder = tfxio.RecordBatchToExamplesEncoder()
        self.compressor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="compress")
        self.batches = 0

    def start_bundle(self):
        self.pending = collections.deque()

    def finished(self, keep: int = 0):
        """Keyed compressed slices in order: those done, then more until `keep` are left."""
        while self.pending and (self.pending[0][1].done() or len(self.pending) > keep):
            key, compressed = self.pending.popleft()
            yield key, compressed.result()

    def process(self, element, reviews_per_split=None):
        split, batch = element
        num_shards = shards_of(split, self.num_shards, reviews_per_split)
        records = self.encoder.encode(batch)
        self.examples[split].inc(len(records))
        cuts = [len(records) * i // num_shards for i in range(num_shards + 1)]
        for i, (start, stop) in enumerate(zip(cuts, cuts[1:])):
            if stop > start:
                shard = (self.batches + i) % num_shards
                self.pending.append(((split, shard), self.compressor.submit(compressed_records, records[start:stop])))
        self.batches += 1
        yield from self.finished(keep=2 * num_shards)  # at most two batches in flight

    def finish_bundle(self):
        for keyed in self.finished():
            yield GlobalWindows.windowed_value_at_end_of_window(keyed)

    def teardown(self):
        self.compressor.shutdown()


class WriteShardFn(beam.DoFn):
    """((split, shard), its compressed slices) → the shard's path, once its file
    is written: under a temporary name, renamed into place, so that on local
    disk a reader never sees half a shard (an object store shows an object only
    once it is whole anyway). A shard with no slices holds one empty member: an
    empty but valid gzip file. report.json waits for every shard's path."""

    def __init__(self, output_dir: str, num_shards: int):
        self.output_dir = output_dir
        self.num_shards = num_shards

    def process(self, element, reviews_per_split=None):
        (split, shard), slices = element
        num_shards = shards_of(split, self.num_shards, reviews_per_split)
        path = shard_path(self.output_dir, split, shard, num_shards)
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with FileSystems.create(partial, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                wrote = False
                for compressed in slices:
                    if compressed:
                        handle.write(compressed)
                        wrote = True
                if not wrote:
                    handle.write(gzip_member(b""))
        except Exception:
            if FileSystems.exists(partial):
                FileSystems.delete([partial])
            raise
        FileSystems.rename([partial], [path])
        yield path


def empty_slice_of_every_shard(_, num_shards: int, splits, reviews_per_split=None):
    """((split, shard), b"") for every shard: each file is written, even one that gets no example."""
    for split, count in shard_counts(num_shards, reviews_per_split, splits).items():
        for shard in range(count):
            yield (split, shard), b""


class WriteExampleShards(beam.PTransform):
    """(split, transformed RecordBatch) pairs → `num_shards` GZIP TFRecord files
    per split, DIR/<split>/part-SSSSS-of-NNNNN.tfrecord.gz, every one of them
    present even when a split has fewer examples than shards. Returns the
    paths written, one element each.

    `reviews_per_split`, a PCollection of (split, reviews) known before the
    examples are (the reviews assigned to each split), caps a split's shards
    at its reviews (`shards_for`); without it every split gets `num_shards`.

    One write for all splits: a write per split cost a dozen Beam transforms
    and a few runner stages apiece, start-up time that every run pays."""

    def __init__(self, output_dir: str, num_shards: int, splits=SPLITS, reviews_per_split=None):
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.splits = tuple(splits)
        self.reviews_per_split = reviews_per_split

    def expand(self, keyed_batches):
        counts = () if self.reviews_per_split is None else (beam.pvalue.AsDict(self.reviews_per_split),)
        every_shard = (
            keyed_batches.pipeline
            | "ShardSeed" >> beam.Create([None])
            | "EveryShard" >> beam.FlatMap(empty_slice_of_every_shard, self.num_shards, self.splits, *counts)
        )
        slices = keyed_batches | "Encode" >> beam.ParDo(EncodeExamplesFn(self.num_shards, self.splits), *counts)
        return (
            (slices, every_shard)
            | "AllSlices" >> beam.Flatten()
            | "ByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShardFn(self.output_dir, self.num_shards), *counts)
        )
