"""The serving image's HTTP server: the export behind Vertex AI's
custom-container contract and TF Serving's REST API.

    python -m deploy.serving.server --model EXPORT_DIR [--host 127.0.0.1] [--port 8080]
    python -m deploy.serving.server --model-base-path SERVING_DIR [--file-system-poll-wait-seconds 1]

--model serves one export (Vertex AI sets AIP_STORAGE_URI to it, and
AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE; the flags win over
them). --model-base-path (TF Serving's --model_base_path is accepted too)
serves the newest numeric version under a folder such as the one
`deploy.workflow push` writes, and switches to a newer one while serving
(versions.py). Concurrent requests share signature calls (batching.py).

Routes:
    GET  AIP_HEALTH_ROUTE (/health)                       200 once a version is served, else 503
    POST AIP_PREDICT_ROUTE (/predict)                     the served version
    GET  /v1/models/review_sentiment[/versions/N]         TF Serving's model status
    GET  /v1/models/review_sentiment[/versions/N]/metadata  its signature defs
    POST /v1/models/review_sentiment[/versions/N]:predict   404 for a version not served
Query strings are ignored; HEAD answers as GET without a body. Request and
reply formats: rest.py. Errors are {"error": "..."}: 400 bad input (and a
Content-Length that is not one plain number), 404 unknown model, version or
route, 405 the wrong method for a route, 408 a body that stalls, 411 no
Content-Length (chunked bodies are not read), 413 a body over
--max-request-bytes (refused before it is read), 501 a method we have no
route for, 503 overloaded (with Retry-After), no version served yet, or
shutting down. A refused body that was not read closes the connection. A
slow or vanished client costs at most --client-timeout-seconds and one log
line. SIGTERM (what Vertex AI and Kubernetes send) stops accepting, answers
503 on /health, lets the requests in flight finish, and exits 0.
"""
import argparse
import contextlib
import ctypes
import dataclasses
import http.server
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

import tensorflow as tf

from deploy import DeployError
from deploy.serving import MODEL_NAME, SERVING_IMAGE, rest
from deploy.serving.batching import Batcher, BatchingOptions, Overloaded, TimedOut
from deploy.serving.versions import Versions
from reviews import logs
from reviews.errors import one_line_errors
from reviews.exports import error_summary

TF_SERVING_ROUTE = f"/v1/models/{MODEL_NAME}:predict"
MODEL_ROUTE = re.compile(r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<verb>/metadata|:\w+)?$")
LARGE_BODY = 2**20  # after a body this large, memory the allocator holds is given back
LINGER_S = 2.0  # how long a body refused unread is still read and dropped before the connection closes


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    model: str | None = None  # one export
    model_base_path: str | None = None  # or a folder of numeric versions
    host: str = "127.0.0.1"
    port: int = SERVING_IMAGE.port
    poll_s: float = 1.0
    max_request_bytes: int = 4 * 2**20
    max_instances: int = 10_000
    client_timeout_s: float = 30.0
    drain_s: float = 30.0
    health_route: str = SERVING_IMAGE.health_route
    predict_route: str = SERVING_IMAGE.predict_route
    log_requests: bool = False
    batching: BatchingOptions = BatchingOptions()


class HTTPError(Exception):
    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.close = status, close


def given_back_memory() -> None:
    """glibc keeps freed memory for reuse; after a large request, hand it back to the system."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ReviewServer(http.server.ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections do not hold up the exit
    request_queue_size = 1024  # socketserver's 5 resets clients that connect at once (listen backlog)

    def __init__(self, options: ServerOptions, versions: Versions | None, batcher: Batcher | None):
        self.options, self.versions, self.batcher = options, versions, batcher
        self.active = 0  # requests being answered
        self.draining = False
        self.counts_lock = threading.Lock()
        self.overloads, self.overload_logged = 0, 0.0
        super().__init__((options.host, options.port), Handler)

    def overload_noted(self) -> bool:
        """Whether this 503 is logged: the first in a second is, with how many were not."""
        with self.counts_lock:
            self.overloads += 1
            if time.monotonic() - self.overload_logged < 1.0:
                return False
            self.overload_logged = time.monotonic()
            if self.overloads > 1:
                sys.stderr.write(f"serving: {self.overloads - 1:,} more requests refused (503) in the last second\n")
            self.overloads = 0
            return True

    def handle_error(self, request, client_address) -> None:
        """A connection fault (a client gone mid-reply) is one log line, never a traceback."""
        error = sys.exc_info()[1]
        sys.stderr.write(f"serving: {client_address[0]}:{client_address[1]} connection ended: "
                         f"{type(error).__name__}: {error}\n")

    def stop(self) -> None:
        """Stops accepting, waits up to drain_s for the requests in flight, stops the batcher and poller."""
        self.draining = True
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + self.options.drain_s
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)
        self.batcher.stop()
        self.versions.stop()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's connection serves many requests
    # One write a reply, sent at once: headers and body written apart, with Nagle's algorithm on,
    # waited for the client's delayed ACK (40 ms a request on one keep-alive connection).
    wbufsize = 2**16
    disable_nagle_algorithm = True
    server: ReviewServer

    def setup(self) -> None:
        self.timeout = self.server.options.client_timeout_s  # reads and writes of a slow client are bounded
        super().setup()

    # ------------------------------------------------------------------ replies

    def reply(self, status: int, payload: dict, close: bool = False) -> None:
        self.refusal = payload.get("error", "") if status >= 400 else ""
        body = json.dumps(payload).encode()
        if self.unread_body():  # what follows on the connection is that body, not a request: do not read on
            close, self.linger = True, True
        if close or self.server.draining:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Retry-After", "1")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def unread_body(self) -> bool:
        """The request announced a body that body() has not read."""
        headers = getattr(self, "headers", None)  # None: the request line itself was refused
        if headers is None or self.body_read:
            return False
        return "Transfer-Encoding" in headers or headers.get("Content-Length", "0").strip() != "0"

    def send_error(self, code, message=None, explain=None) -> None:
        """http.server's own errors (a bad request line, an unknown method) as JSON too."""
        self.reply(int(code), {"error": message or self.responses.get(code, ("error",))[0]}, close=True)

    def log_request(self, code="-", size="-") -> None:
        refusal = getattr(self, "refusal", "")
        if refusal:
            if str(code) == "503" and not self.server.overload_noted():
                return  # under overload, one line a second says how many were refused
            self.log_message('"%s" %s: %s', self.requestline, str(code), refusal[:300])
        elif self.server.options.log_requests:
            super().log_request(code, size)

    def log_message(self, format, *args) -> None:  # noqa: A002  one line a request, on stderr
        sys.stderr.write(f"serving: {self.address_string()} {format % args}\n")

    def log_error(self, format, *args) -> None:  # noqa: A002
        if format.startswith("Request timed out"):
            if not self.raw_requestline:
                return  # an idle keep-alive connection closed: nothing went wrong
            format, args = '"%s": nothing received for %g s; connection closed', (self.requestline, self.timeout)
        self.log_message(format, *args)

    def handle_one_request(self) -> None:
        self.raw_requestline = b""  # stays empty when the wait for a request line times out
        self.body_read, self.linger = False, False
        super().handle_one_request()

    def finish(self) -> None:
        super().finish()
        if self.linger:
            self.lingering_close()

    def lingering_close(self) -> None:
        """After refusing a body unread (413), read and drop what the client still sends, for
        a moment, before closing: a client that sends its whole body before it reads (most do)
        then gets the answer instead of a reset connection."""
        deadline = time.monotonic() + LINGER_S
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            while time.monotonic() < deadline and self.connection.recv(2**16):
                pass
        except OSError:
            pass

    def handle_expect_100(self) -> bool:
        """A client that waits for 100 Continue is told before it sends a body that is too large."""
        try:
            self.content_length()
        except HTTPError as error:
            self.reply(error.status, {"error": str(error)}, close=True)
            self.linger = False  # it sends no body
            return False
        return super().handle_expect_100()

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.answered(self.got)

    def do_HEAD(self) -> None:  # noqa: N802  health checkers that use HEAD
        self.answered(self.got)

    def do_POST(self) -> None:  # noqa: N802
        self.answered(self.posted)

    def answered(self, route) -> None:
        with self.server.counts_lock:
            self.server.active += 1
        try:
            status, payload = route()
            self.reply(status, payload)
        except HTTPError as error:
            self.reply(error.status, {"error": str(error)}, close=error.close)
        except (TimeoutError, ConnectionError):
            raise  # the client's fault: http.server and handle_error log it in one line
        except Exception as error:  # noqa: BLE001  a fault of ours: 500 and one line, the server goes on
            self.reply(500, {"error": f"internal error: {type(error).__name__}: {error_summary(error)}"}, close=True)
        finally:
            with self.server.counts_lock:
                self.server.active -= 1

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]

    def model_route(self) -> tuple[str | None, str]:
        """(the version asked for or None, the verb: '', '/metadata', ':predict', ...), or 404."""
        match = MODEL_ROUTE.match(self.route)
        if match is None:
            raise HTTPError(404, f"no route {self.path[:200]}")
        if match["model"] != MODEL_NAME:
            raise HTTPError(404, f"no model {match['model'][:100]!r}: this server serves {MODEL_NAME!r}")
        return match["version"], match["verb"] or ""

    def got(self) -> tuple[int, dict]:
        versions = self.server.versions
        if self.route == self.server.options.health_route:
            served = versions.served_version
            if self.server.draining:
                return 503, {"error": "shutting down"}
            return (200, {"status": "ok", "version": served}) if served else (503, {"error": "no version is served yet"})
        if self.route == self.server.options.predict_route:
            raise HTTPError(405, f"{self.route} takes POST")
        version, verb = self.model_route()
        if verb == "":
            status = versions.status(version)
            if not status:
                raise HTTPError(404, f"version {version} of {MODEL_NAME} is unknown" if version else
                                f"no version of {MODEL_NAME} has been seen yet")
            return 200, {"model_version_status": status}
        if verb == "/metadata":
            with versions.serving(version) as servable:
                if servable is None:
                    raise self.not_served(version)
                return 200, {"model_spec": {"name": MODEL_NAME, "signature_name": "", "version": servable.version},
                             "metadata": {"signature_def": {"signature_def": servable.signature_defs}}}
        if verb == ":predict":
            raise HTTPError(405, f"{self.route} takes POST")
        raise HTTPError(404, f"no route {self.command} {self.path[:200]}")

    def posted(self) -> tuple[int, dict]:
        if self.route == self.server.options.predict_route:
            version = None
        elif self.route == self.server.options.health_route:
            raise HTTPError(405, f"{self.route} takes GET")
        else:
            version, verb = self.model_route()
            if verb in ("", "/metadata"):
                raise HTTPError(405, f"{self.route} takes GET")
            if verb != ":predict":
                raise HTTPError(404, f"no route POST {self.path[:200]} (:predict is served; classify, regress are not)")
        return 200, self.predicted(version)

    def not_served(self, version: str | None) -> HTTPError:
        served = self.server.versions.served_version
        if version is not None:
            return HTTPError(404, f"version {version[:50]} of {MODEL_NAME} is not served (version {served} is)"
                             if served else f"version {version[:50]} of {MODEL_NAME} is not served")
        return HTTPError(503, "no version is served yet")

    # ------------------------------------------------------------------ predict

    def content_length(self) -> int:
        """The body's length, read strictly (RFC 9112: one Content-Length of digits, no chunked
        body beside it), so that a proxy in front and this server agree where a request ends."""
        given = self.headers.get_all("Content-Length") or []
        if "Transfer-Encoding" in self.headers:
            raise HTTPError(400 if given else 411, "chunked bodies are not read: send a Content-Length instead", close=True)
        if not given:
            raise HTTPError(411, "a request body needs a Content-Length", close=True)
        if len(given) > 1:
            raise HTTPError(400, "the request has more than one Content-Length", close=True)
        if not (given[0].isascii() and given[0].isdigit()):
            raise HTTPError(400, f"Content-Length {given[0][:50]!r} is not a byte count", close=True)
        length = int(given[0])
        if length > self.server.options.max_request_bytes:
            raise HTTPError(413, f"the body is {length:,} bytes: at most {self.server.options.max_request_bytes:,} "
                            "(--max-request-bytes); send fewer reviews a request", close=True)
        return length

    def body(self) -> bytes:
        length = self.content_length()
        chunks, received = [], 0
        try:
            while received < length:
                chunk = self.rfile.read1(min(length - received, 2**20))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except TimeoutError:
            raise HTTPError(408, f"the body stopped after {received:,} of {length:,} bytes for {self.timeout:g} s",
                            close=True) from None
        finally:
            self.body_read = True
        if received < length:
            raise HTTPError(400, f"the body ended after {received:,} of {length:,} bytes", close=True)
        return b"".join(chunks)

    def predicted(self, version: str | None) -> dict:
        server = self.server
        with server.batcher.arrival() as arrival:
            body = self.body()
            try:
                request = rest.predict_request(body, server.options.max_instances)
            except rest.BadRequest as error:
                raise HTTPError(400, str(error)) from None
            with server.versions.serving(version) as servable:
                if servable is None:
                    raise self.not_served(version)
                try:
                    outputs = server.batcher.outputs(servable, request.signature, request.inputs, arrival)
                except (Overloaded, TimedOut) as error:
                    raise HTTPError(503, str(error)) from None
                except tf.errors.InvalidArgumentError as error:
                    raise HTTPError(400, f"the model refused the input: {error_summary(error)}") from None
        answer = rest.reply(request, outputs)
        if len(body) >= LARGE_BODY:
            del body, request, outputs
            given_back_memory()
        return answer


def serving_options(argv=None) -> ServerOptions:
    parser = logs.OneLineParser(name="serving", prog="python -m deploy.serving.server", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", default=None, help="one export (default: $AIP_STORAGE_URI)")
    source.add_argument("--model-base-path", "--model_base_path", dest="model_base_path",
                        help="a folder of numeric versions: the newest is served, new ones are picked up while serving")
    parser.add_argument("--file-system-poll-wait-seconds", "--file_system_poll_wait_seconds", dest="poll_s", type=float,
                        default=1.0, help="how often the base path is looked at for a new version (0: once, at start)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIP_HTTP_PORT", SERVING_IMAGE.port)))
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (the serving image: 0.0.0.0)")
    defaults, batching = ServerOptions(), BatchingOptions()
    parser.add_argument("--max-batch-size", type=int, default=batching.max_batch_size, help="reviews in one model call")
    parser.add_argument("--batch-timeout-ms", type=float, default=batching.batch_timeout_s * 1000,
                        help="the longest a batch waits for more requests")
    parser.add_argument("--max-queued-reviews", type=int, default=batching.max_queued, help="beyond: 503")
    parser.add_argument("--max-request-bytes", type=int, default=defaults.max_request_bytes, help="beyond: 413")
    parser.add_argument("--max-instances", type=int, default=defaults.max_instances, help="reviews a request; beyond: 400")
    parser.add_argument("--client-timeout-seconds", type=float, default=defaults.client_timeout_s,
                        help="the longest a client may take to send or read")
    parser.add_argument("--request-timeout-seconds", type=float, default=batching.request_timeout_s,
                        help="the longest a request waits for its scores (then 503)")
    parser.add_argument("--drain-seconds", type=float, default=defaults.drain_s,
                        help="on SIGTERM, the longest the requests in flight are waited for")
    parser.add_argument("--log-requests", action="store_true", help="log every request (errors are always logged)")
    args = parser.parse_args(argv)
    model = args.model or (None if args.model_base_path else os.environ.get("AIP_STORAGE_URI"))
    if not model and not args.model_base_path:
        parser.error("--model or --model-base-path (or AIP_STORAGE_URI) is required")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: a port is 0-65535 (0: any free one)")
    for flag in ("--max-batch-size", "--max-queued-reviews", "--max-request-bytes", "--max-instances"):
        if getattr(args, flag[2:].replace("-", "_")) < 1:
            parser.error(f"{flag} must be at least 1")
    for flag, least in (("--file-system-poll-wait-seconds", 0), ("--batch-timeout-ms", 0), ("--drain-seconds", 0),
                        ("--client-timeout-seconds", None), ("--request-timeout-seconds", None)):
        value = getattr(args, "poll_s" if flag.startswith("--file") else flag[2:].replace("-", "_"))
        if not math.isfinite(value) or value < 0 or (least is None and value == 0):
            parser.error(f"{flag} {value:g}: " + ("a number of seconds above 0" if least is None else "a number, 0 or more"))
    if args.max_queued_reviews < args.max_instances:
        parser.error(f"--max-queued-reviews {args.max_queued_reviews} is below --max-instances {args.max_instances}: "
                     "the largest request could never be queued")
    return ServerOptions(
        model=model, model_base_path=args.model_base_path, host=args.host, port=args.port, poll_s=args.poll_s,
        max_request_bytes=args.max_request_bytes, max_instances=args.max_instances,
        client_timeout_s=args.client_timeout_seconds, drain_s=args.drain_seconds,
        health_route=os.environ.get("AIP_HEALTH_ROUTE", SERVING_IMAGE.health_route),
        predict_route=os.environ.get("AIP_PREDICT_ROUTE", SERVING_IMAGE.predict_route), log_requests=args.log_requests,
        batching=BatchingOptions(max_batch_size=args.max_batch_size, batch_timeout_s=args.batch_timeout_ms / 1000,
                                 max_queued=args.max_queued_reviews, request_timeout_s=args.request_timeout_seconds))


def server(options: ServerOptions) -> ReviewServer:
    """Binds, then loads the export (an ExportError if --model is not one); serve_forever() serves.
    Bound first: a port that is taken is said at once, not after the model's load."""
    if options.model_base_path is not None and not tf.io.gfile.isdir(options.model_base_path):
        raise DeployError(f"--model-base-path {options.model_base_path} is not a folder")
    try:
        httpd = ReviewServer(options, None, None)
    except (OSError, OverflowError) as error:
        raise DeployError(f"cannot listen on {options.host}:{options.port}: {getattr(error, 'strerror', None) or error}") from None
    try:
        httpd.versions = Versions(model_dir=options.model, poll_s=options.poll_s) if options.model else \
            Versions(base_path=options.model_base_path, poll_s=options.poll_s)
    except BaseException:
        httpd.server_close()
        raise
    httpd.batcher = Batcher(options.batching)
    return httpd


def served_until_terminated(httpd: ReviewServer) -> str:
    """Serves until SIGTERM or SIGINT, then drains; returns the signal's name."""
    received = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: received.append(signal.Signals(number).name))
    threading.Thread(target=httpd.serve_forever, name="accept", daemon=True).start()
    while not received:
        time.sleep(0.1)
    httpd.stop()
    return received[0]


@one_line_errors("serving")
def main(argv=None) -> int:
    options = serving_options(argv)
    logs.configure(False)
    httpd = server(options)
    source = options.model or f"{options.model_base_path} (version {httpd.versions.served_version or 'none yet'})"
    print(f"serving {source} on {options.host}:{httpd.server_address[1]}", file=sys.stderr)
    stopped_by = served_until_terminated(httpd)
    print(f"serving: {stopped_by}: stopped after the requests in flight", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
