"""The Beam transforms of validation: reviews.validation's rule applied to
records (ValidateReviews) or ReviewBatches (ValidateReviewBatches); every
rejection reason is also a Beam counter."""
import apache_beam as beam
from apache_beam.metrics import Metrics

from reviews.records import RawRecord, ReviewBatch
from reviews.validation import Rejection, rejection_line, validated_batch, validated_review

REJECTED = "rejected"


class ValidateFn(beam.DoFn):
    def process(self, record: RawRecord):
        try:
            yield validated_review(record)
        except Rejection as rejection:
            Metrics.counter("validate", f"rejected_{rejection.reason}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, (rejection.reason, rejection_line(record, rejection)))


class ValidateReviews(beam.PTransform):
    """RawRecord → typed review dicts (main) and (reason, json line) (rejected)."""

    def expand(self, records):
        return records | "Validate" >> beam.ParDo(ValidateFn()).with_outputs(REJECTED, main="valid")


class ValidateBatchFn(beam.DoFn):
    def process(self, batch: ReviewBatch):
        valid, rejected = validated_batch(batch)
        for record, rejection in rejected:
            Metrics.counter("validate", f"rejected_{rejection.reason}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, (rejection.reason, rejection_line(record, rejection)))
        if len(valid):
            yield valid


class ValidateReviewBatches(beam.PTransform):
    """ReviewBatch → ReviewColumns (main) and (reason, json line) (rejected)."""

    def expand(self, batches):
        return batches | "Validate" >> beam.ParDo(ValidateBatchFn()).with_outputs(REJECTED, main="valid")
