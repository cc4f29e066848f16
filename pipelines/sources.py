"""The Beam transforms that read raw reviews: file patterns → ReviewBatches
(or RawRecords), each file parsed whole by reviews.records."""
import logging
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from reviews.records import ReviewBatch, batches_in_file

LOG = logging.getLogger(__name__)


class ParseFileFn(beam.DoFn):
    """File → ReviewBatches. Logs its progress every PROGRESS_EVERY records: a
    full file takes a while."""

    PROGRESS_EVERY = 100_000

    def __init__(self):
        self.files = Metrics.counter("read", "files")
        self.records = Metrics.counter("read", "records")

    def process(self, readable_file: fileio.ReadableFile):
        self.files.inc()
        path = readable_file.metadata.path
        started, read = time.monotonic(), 0
        # Raw bytes: decompressed here, so that a damaged gzip is seen, not cut short silently.
        with readable_file.open(compression_type=CompressionTypes.UNCOMPRESSED) as binary:
            for batch in batches_in_file(path, binary):
                self.records.inc(len(batch))
                if (read + len(batch)) // self.PROGRESS_EVERY > read // self.PROGRESS_EVERY:
                    LOG.info("%s: %s records read (%s rows/s)", path, f"{read + len(batch):,}",
                             f"{(read + len(batch)) / max(time.monotonic() - started, 1e-9):,.0f}")
                read += len(batch)
                yield batch


class ReadReviewBatches(beam.PTransform):
    """Local paths, globs or gs:// patterns (comma separated) → ReviewBatch."""

    def __init__(self, pattern: str):
        super().__init__()
        self.patterns = [p.strip() for p in pattern.split(",") if p.strip()]

    def expand(self, pbegin):
        return (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> fileio.MatchAll()
            # Without it, all files of one pattern stay fused to the one worker that matched
            # them and are read one after the other; with it, each worker reads files of its own.
            | "SpreadFiles" >> beam.Reshuffle()
            | "OpenFiles" >> fileio.ReadMatches()
            | "ParseFiles" >> beam.ParDo(ParseFileFn())
        )


class ReadReviews(beam.PTransform):
    """The same records one by one (RawRecord), for per-review stages."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def expand(self, pbegin):
        return pbegin | "ReadBatches" >> ReadReviewBatches(self.pattern) | "Records" >> beam.FlatMap(ReviewBatch.records)
