"""The serving image's HTTP server: an export's raw-text signature behind
Vertex AI's custom-container contract, and TF Serving's REST route too.

    python -m deploy.serving.server --model EXPORT_DIR [--host 127.0.0.1] [--port 8080]

Vertex AI sets AIP_STORAGE_URI (the model's artifacts: the export), AIP_HTTP_PORT,
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE; the flags win over them. Requests are
TF Serving's row format, {"instances": [{"text": "..."}, ...]} (or plain
strings); each prediction is {probability, label, num_words, oov_fraction}.
GET on the health route answers 200 once the export is loaded. A body that is
not such a request gets 400 with a one-line reason, never a stack trace.
"""
import argparse
import http.server
import json
import os
import sys

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

from deploy.serving import MODEL_NAME, SERVING_IMAGE
from deploy import DeployError
from reviews.errors import one_line_errors
from reviews.exports import loaded_signature, served

MAX_INSTANCES = 10_000
TF_SERVING_ROUTE = f"/v1/models/{MODEL_NAME}:predict"


class BadRequest(Exception):
    pass


def texts_of(body: bytes) -> list[str]:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the body is not JSON: {error}") from None
    instances = request.get("instances") if isinstance(request, dict) else None
    if not isinstance(instances, list) or not instances:
        raise BadRequest('expected {"instances": [{"text": "..."}, ...]}')
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(f"{len(instances):,} instances: at most {MAX_INSTANCES:,} a request")
    texts = [instance.get("text") if isinstance(instance, dict) else instance for instance in instances]
    if not all(isinstance(text, str) for text in texts):
        raise BadRequest('every instance must be a string or {"text": a string}')
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("a text holds a lone surrogate escape (\\ud800-\\udfff): not Unicode text") from None
    return texts


def predictions(signature, texts: list[str]) -> list[dict]:
    outputs = served(signature, texts)
    return [{name: outputs[name][i].item() for name in sorted(outputs)} for i in range(len(texts))]


def handler_for(signature, health_route: str, predict_route: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path == health_route:
                self.reply(200, {"status": "ok"})
            else:
                self.reply(404, {"error": f"no route {self.path}"})

        def do_POST(self):  # noqa: N802
            if self.path not in (predict_route, TF_SERVING_ROUTE):
                self.reply(404, {"error": f"no route {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.reply(400, {"error": f"Content-Length {self.headers.get('Content-Length')!r} is not a byte count"})
                return
            try:
                self.reply(200, {"predictions": predictions(signature, texts_of(self.rfile.read(length)))})
            except BadRequest as error:
                self.reply(400, {"error": str(error)})

        def log_message(self, format, *args):  # noqa: A002 (one line a request, on stderr)
            sys.stderr.write(f"serving: {self.address_string()} {format % args}\n")

    return Handler


def server(export_dir: str, port: int, health_route: str = SERVING_IMAGE.health_route,
           predict_route: str = SERVING_IMAGE.predict_route, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """Loads the export (an ExportError if it is not one) and binds; serve_forever() serves."""
    handler = handler_for(loaded_signature(export_dir), health_route, predict_route)
    return http.server.ThreadingHTTPServer((host, port), handler)


@one_line_errors("serving")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.serving.server", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.environ.get("AIP_STORAGE_URI"), help="the export (default: $AIP_STORAGE_URI)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIP_HTTP_PORT", SERVING_IMAGE.port)))
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (the serving image: 0.0.0.0)")
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (or AIP_STORAGE_URI) is required")
    try:
        httpd = server(args.model, args.port, os.environ.get("AIP_HEALTH_ROUTE", SERVING_IMAGE.health_route),
                       os.environ.get("AIP_PREDICT_ROUTE", SERVING_IMAGE.predict_route), args.host)
    except OSError as error:
        raise DeployError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    print(f"serving {args.model} on {args.host}:{httpd.server_address[1]}", file=sys.stderr)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("serving: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
