"""Dynamic batching: concurrent requests share one signature call.

Every request that runs the signature on its own pays the call's fixed cost
(graph dispatch, the transform's table lookups, one LSTM step per column),
so under concurrency the server spends its time in small calls. The batcher
queues each request's inputs and one worker thread gathers them into calls
of at most `max_batch_size` reviews, as TF Serving's batching does
(max_batch_size, batch_timeout_micros, a bounded queue):

- a batch closes when it is full, when its first request has waited
  `batch_timeout_s`, or at once when no other request is on its way (one
  client alone is never kept waiting for batch mates that cannot come);
- a request larger than a batch is cut into pieces, each a call of its own;
- a full queue refuses a request at once (Overloaded: 503) rather than
  letting waits pile up;
- a call that fails (a malformed tf.Example) is run again request by
  request, so only the request that caused it gets the error.

The export's scores do not depend on batch mates (trainer/export.py: masked
models, length-sorted chunks), so each request gets exactly what it would
alone; tests/test_deploy_serving.py checks that through the HTTP server.
"""
import collections
import dataclasses
import threading
import time

import numpy as np


class Overloaded(Exception):
    """The queue is full: the client should retry later (503)."""


class TimedOut(Exception):
    """A request waited longer than its time bound (503)."""


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 256  # reviews in one signature call
    batch_timeout_s: float = 0.002  # the longest a batch waits for mates
    max_queued: int = 16_384  # reviews waiting, all requests together; beyond: 503
    request_timeout_s: float = 30.0  # the longest a request waits for its scores


class Job:
    """One request's inputs for one model version and signature."""

    def __init__(self, servable, signature: str, inputs: list, pieces: int):
        self.servable, self.signature, self.inputs = servable, signature, inputs
        self.parts: list = [None] * pieces
        self.remaining = pieces
        self.error: BaseException | None = None
        self.abandoned = False
        self.done = threading.Event()

    def outputs(self) -> dict[str, np.ndarray]:
        if len(self.parts) == 1:
            return self.parts[0]
        return {name: np.concatenate([part[name] for part in self.parts]) for name in self.parts[0]}


@dataclasses.dataclass
class Piece:
    job: Job
    index: int
    start: int
    stop: int
    queued_at: float

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def key(self) -> tuple:
        return id(self.job.servable), self.job.signature


class Arrival:
    """A request being read: the batcher waits for it (up to its timeout)
    rather than closing a batch that it could join."""

    def __init__(self, batcher: "Batcher"):
        self.batcher = batcher
        self.pending = False

    def __enter__(self) -> "Arrival":
        self.batcher._arriving(+1)
        self.pending = True
        return self

    def __exit__(self, *exc) -> None:
        if self.pending:  # read but never submitted (a bad request): stop waiting for it
            self.batcher._arriving(-1)
            self.pending = False


class Batcher:
    def __init__(self, options: BatchingOptions = BatchingOptions()):
        self.options = options
        self._queue: collections.deque[Piece] = collections.deque()
        self._queued = 0  # reviews in the queue
        self._arrivals = 0
        self._stopping = False
        self._changed = threading.Condition()
        self.calls = 0  # signature calls made: the batch count, for tests and the benchmark
        self._worker = threading.Thread(target=self._serve, name="batcher", daemon=True)
        self._worker.start()

    def arrival(self) -> Arrival:
        return Arrival(self)

    def _arriving(self, change: int) -> None:
        with self._changed:
            self._arrivals += change
            self._changed.notify_all()

    def outputs(self, servable, signature: str, inputs: list, arrival: Arrival | None = None) -> dict[str, np.ndarray]:
        """The signature's outputs for these inputs, as if called on them alone."""
        size = self.options.max_batch_size
        starts = range(0, len(inputs), size)
        job = Job(servable, signature, inputs, len(starts))
        now = time.monotonic()
        with self._changed:
            if arrival is not None and arrival.pending:
                self._arrivals -= 1
                arrival.pending = False
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if self._queued + len(inputs) > self.options.max_queued:
                self._changed.notify_all()
                raise Overloaded(f"{self._queued:,} reviews are queued (at most {self.options.max_queued:,}): retry later")
            for index, start in enumerate(starts):
                self._queue.append(Piece(job, index, start, min(start + size, len(inputs)), now))
            self._queued += len(inputs)
            self._changed.notify_all()
        if not job.done.wait(self.options.request_timeout_s):
            job.abandoned = True  # its pieces still queued are dropped, not run for nobody
            raise TimedOut(f"no scores within {self.options.request_timeout_s:g} s")
        if job.error is not None:
            raise job.error
        return job.outputs()

    def stop(self) -> None:
        """Runs what is queued, then ends the worker."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._worker.join(timeout=self.options.request_timeout_s)

    # -------------------------------------------------------------- the worker

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[Piece] | None:
        with self._changed:
            while not self._queue:
                if self._stopping:
                    return None
                self._changed.wait()
            batch = [self._queue.popleft()]
            size, key = batch[0].size, batch[0].key
            deadline = batch[0].queued_at + self.options.batch_timeout_s
            while size < self.options.max_batch_size:
                if self._queue:
                    head = self._queue[0]
                    if head.key != key or size + head.size > self.options.max_batch_size:
                        break
                    batch.append(self._queue.popleft())
                    size += head.size
                    continue
                left = deadline - time.monotonic()
                if self._arrivals == 0 or left <= 0 or self._stopping:
                    break
                self._changed.wait(left)
            self._queued -= size
            return batch

    def _run(self, batch: list[Piece]) -> None:
        batch = [piece for piece in batch if not piece.job.abandoned]
        if not batch:
            return
        servable, signature = batch[0].job.servable, batch[0].job.signature
        inputs = [x for piece in batch for x in piece.job.inputs[piece.start:piece.stop]]
        try:
            outputs = servable.run(signature, inputs)
            self.calls += 1
        except Exception as error:  # noqa: BLE001  whose input caused it is found below
            if len({id(piece.job) for piece in batch}) > 1:
                for piece in batch:  # alone, so that only the culprit fails
                    self._run([piece])
                return
            self._finish(batch[0], error=error)
            return
        offset = 0
        for piece in batch:
            self._finish(piece, {name: value[offset:offset + piece.size] for name, value in outputs.items()})
            offset += piece.size

    @staticmethod
    def _finish(piece: Piece, outputs: dict | None = None, error: BaseException | None = None) -> None:
        job = piece.job
        if error is not None and job.error is None:
            job.error = error
            job.abandoned = True  # its other pieces need not run
        job.parts[piece.index] = outputs
        job.remaining -= 1
        if job.remaining == 0 or job.error is not None:
            job.done.set()
