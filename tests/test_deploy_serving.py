"""deploy.serving: the endpoint spec, the batcher, the versions, and the HTTP
server over real exports on 127.0.0.1."""
import base64
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from deploy import serving
from deploy.serving import batching, versions
from deploy.serving.__main__ import main as serving_main
from reviews.exports import ExportError, loaded_signature, served
from tests.conftest import REPO, concurrently, http_json, latest_export, serving_at


def test_request_example_matches_the_exports_signature(trained_job):
    loaded = tf.saved_model.load(latest_export(trained_job))
    signature = loaded.signatures[serving.REQUEST["signature_name"]]
    _, inputs = signature.structured_input_signature
    assert set(inputs) == {key for instance in serving.REQUEST["instances"] for key in instance} == {"text"}
    assert inputs["text"].dtype == tf.string
    # TF Serving's row format stacks the instances into one batch: the same call.
    outputs = signature(text=tf.constant([i["text"] for i in serving.REQUEST["instances"]]))
    assert set(outputs) == {"probability", "label", "num_words", "oov_fraction"} and outputs["probability"].shape == (2,)


def test_endpoint_spec_dry_run(capsys):
    assert serving_main(["--project", "p", "--region", "europe-west4", "--export", "gs://b/jobs/1/export/17",
                         "--registry", "europe-west4-docker.pkg.dev/p/repo", "--dry-run"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["model"]["artifact_uri"] == "gs://b/jobs/1/export/17"
    assert spec["model"]["serving_container_image_uri"] == f"europe-west4-docker.pkg.dev/p/repo/review-serving:tf{serving.SERVING_IMAGE.tensorflow}"
    assert spec["model"]["serving_container_predict_route"] == "/predict" and spec["model"]["serving_container_ports"] == [8080]
    assert spec["deployment"]["min_replica_count"] == 1


def test_the_serving_server_answers_health_and_predictions_like_the_export(trained_job):
    import urllib.error
    import urllib.request

    from deploy.serving import server

    with serving_at(model=latest_export(trained_job)) as httpd:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        assert urllib.request.urlopen(f"{base}/health", timeout=10).status == 200
        body = json.dumps(serving.REQUEST).encode()
        texts = [i["text"] for i in serving.REQUEST["instances"]]
        expected = served(loaded_signature(latest_export(trained_job)), texts)
        for route in ("/predict", server.TF_SERVING_ROUTE):
            reply = json.loads(urllib.request.urlopen(urllib.request.Request(f"{base}{route}", data=body), timeout=30).read())
            got = reply["predictions"]
            np.testing.assert_allclose([p["probability"] for p in got], expected["probability"], atol=1e-6)
            assert [p["num_words"] for p in got] == expected["num_words"].tolist()
            assert set(got[0]) == {"probability", "label", "num_words", "oov_fraction"}
        for body, message in ((b'{"instances": [3]}', "every instance must be a string"), (b"{", "the body is not JSON"),
                              (b'{"instances": ["\\ud800"]}', "lone surrogate"), (b'{"instances": []}', "expected")):
            with pytest.raises(urllib.error.HTTPError) as bad:
                urllib.request.urlopen(urllib.request.Request(f"{base}/predict", data=body), timeout=10)
            assert bad.value.code == 400 and message in json.loads(bad.value.read())["error"]
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=10)
        connection.putrequest("POST", "/predict")
        connection.putheader("Content-Length", "abc")
        connection.endheaders()
        reply = connection.getresponse()
        assert reply.status == 400 and "is not a byte count" in json.loads(reply.read())["error"]


# ------------------------------------------------------------------ the batcher (no TensorFlow)

class Recording:
    """A servable whose 'model' is the length of each input: what each call got is kept."""

    def __init__(self, version="1", gate=None):
        self.version, self.path, self.in_flight, self.released = version, f"/v/{version}", 0, False
        self.calls, self.gate, self.entered = [], gate, threading.Event()

    def run(self, signature, inputs):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        self.calls.append(list(inputs))
        if "bad" in inputs:
            raise ValueError("a bad input")
        return {"length": np.array([len(x) for x in inputs]), "first": np.array([x[:1] for x in inputs])}

    def release(self):
        self.released = True


def queued_reviews(batcher, count: int) -> None:
    """Waits until `count` reviews wait in the batcher's queue."""
    deadline = time.monotonic() + 30
    while batcher._queued != count:
        assert time.monotonic() < deadline, batcher._queued
        time.sleep(0.01)


def test_concurrent_requests_share_calls_and_each_gets_its_own_outputs_in_order():
    gate = threading.Event()
    servable = Recording(gate=gate)  # a call in progress while the other requests arrive
    batcher = batching.Batcher(batching.BatchingOptions(max_batch_size=64, batch_timeout_s=0))
    requests = [[f"{i}" * (j + 1) for j in range(i % 4 + 1)] for i in range(1, 17)]
    first = threading.Thread(target=batcher.outputs, args=(servable, "serving_default", ["first"]))
    try:
        first.start()
        servable.entered.wait(30)
        opener = threading.Thread(target=lambda: (queued_reviews(batcher, sum(map(len, requests))), gate.set()))
        opener.start()
        results = concurrently(lambda inputs: batcher.outputs(servable, "serving_default", inputs), requests)
    finally:
        gate.set()
        batcher.stop()
    servable.calls.pop(0)  # ["first"]
    for inputs, outputs in zip(requests, results):
        assert outputs["length"].tolist() == [len(x) for x in inputs] and outputs["first"].tolist() == [x[0] for x in inputs]
    assert len(servable.calls) == 1  # all 16 requests, queued meanwhile, in one call (40 reviews <= 64)
    assert sorted(x for call in servable.calls for x in call) == sorted(x for r in requests for x in r)


def test_a_request_larger_than_a_batch_is_cut_into_calls_and_put_back_in_order():
    servable = Recording()
    batcher = batching.Batcher(batching.BatchingOptions(max_batch_size=4, batch_timeout_s=0))
    inputs = [str(i) * (i % 5 + 1) for i in range(10)]
    try:
        outputs = batcher.outputs(servable, "serving_default", inputs)
    finally:
        batcher.stop()
    assert outputs["length"].tolist() == [len(x) for x in inputs]
    assert [len(call) for call in servable.calls] == [4, 4, 2]


def test_one_client_alone_is_not_kept_waiting_for_batch_mates():
    servable = Recording()
    batcher = batching.Batcher(batching.BatchingOptions(batch_timeout_s=30))
    try:
        started = time.monotonic()
        for _ in range(3):
            batcher.outputs(servable, "serving_default", ["a"])
        assert time.monotonic() - started < 5  # not 3 x 30 s: nobody else was on the way
        with batcher.arrival() as arrival:  # a request being read: the batch waits for it (up to the timeout)
            waiting = threading.Thread(target=batcher.outputs, args=(servable, "serving_default", ["b"]))
            waiting.start()
            time.sleep(0.3)
            assert servable.calls == [["a"]] * 3  # "b" waits for the request being read
            batcher.outputs(servable, "serving_default", ["cc"], arrival)
        waiting.join(10)
    finally:
        batcher.stop()
    assert servable.calls[-1] == ["b", "cc"]


def test_a_full_queue_refuses_at_once_and_a_failing_input_fails_only_its_request():
    gate = threading.Event()
    servable = Recording(gate=gate)
    batcher = batching.Batcher(batching.BatchingOptions(max_batch_size=2, batch_timeout_s=0, max_queued=4))
    try:
        busy = threading.Thread(target=batcher.outputs, args=(servable, "serving_default", ["x", "y"]))
        busy.start()
        servable.entered.wait(30)  # taken by the worker, which waits at the gate
        queued = [threading.Thread(target=batcher.outputs, args=(servable, "serving_default", [s])) for s in "abcd"]
        for thread in queued:
            thread.start()
        queued_reviews(batcher, 4)
        started = time.monotonic()
        with pytest.raises(batching.Overloaded, match="4 reviews are queued"):
            batcher.outputs(servable, "serving_default", ["e"])
        assert time.monotonic() - started < 1
        gate.set()
        for thread in [busy, *queued]:
            thread.join(10)
        results = concurrently(lambda inputs: batcher.outputs(servable, "serving_default", inputs), [["ok"], ["bad"], ["fine"]])
    finally:
        gate.set()
        batcher.stop()
    assert isinstance(results[1], ValueError)
    assert results[0]["length"].tolist() == [2] and results[2]["length"].tolist() == [4]


# ------------------------------------------------------------------ versions (no TensorFlow)

def fake_loader(version, path):
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise ExportError(f"{path} holds no saved_model.pb")
    return Recording(version)


def new_version(base: pathlib.Path, number: int, valid: bool = True) -> None:
    """As deploy.workflow push makes one: written aside, then renamed into place."""
    incoming = base / f".incoming-{number}"
    incoming.mkdir()
    (incoming / ("saved_model.pb" if valid else "README")).write_text("x")
    incoming.rename(base / str(number))


def test_the_newest_version_is_served_and_a_new_one_replaces_it_after_its_requests(tmp_path):
    for number in (1, 2):
        new_version(tmp_path, number)
    (tmp_path / "not-a-version").mkdir()
    served = versions.Versions(base_path=str(tmp_path), poll_s=0, loader=fake_loader)
    assert served.served_version == "2"
    assert served.status() == [versions.status_entry("2", "AVAILABLE")]
    with served.serving() as old:
        new_version(tmp_path, 3)
        switch = threading.Thread(target=served.poll)
        switch.start()
        time.sleep(0.3)
        assert served.served_version == "3" and old.version == "2" and not old.released  # still in use
        assert served.status("2") == [versions.status_entry("2", "UNLOADING")]
    switch.join(10)
    assert old.released and served.status("2") == [versions.status_entry("2", "END")]
    with served.serving("2") as gone, served.serving("3") as current:
        assert gone is None and current.version == "3"


def test_a_real_version_cut_short_is_reported_and_the_older_one_served(export, tmp_path):
    shutil.copytree(export, tmp_path / "1")
    shutil.copytree(export, tmp_path / "2")
    (variables,) = (tmp_path / "2" / "variables").glob("variables.data-*")
    variables.write_bytes(variables.read_bytes()[:100])  # a copy cut short: reading it raises IndexError
    served = versions.Versions(base_path=str(tmp_path), poll_s=0)
    assert served.served_version == "1"
    (cut,) = served.status("2")
    assert cut["state"] == "END" and "cannot be loaded as a SavedModel" in cut["status"]["error_message"]
    served.poll()
    assert served.status("2") == [cut] and served.served_version == "1"  # not tried again
    with pytest.raises(ExportError, match="cannot be loaded as a SavedModel"):
        versions.Versions(model_dir=str(tmp_path / "2"))


def test_a_version_that_does_not_load_is_reported_and_never_served(tmp_path):
    new_version(tmp_path, 1)
    new_version(tmp_path, 2, valid=False)  # the newest is broken at start: the older one is served
    served = versions.Versions(base_path=str(tmp_path), poll_s=0, loader=fake_loader)
    assert served.served_version == "1"
    new_version(tmp_path, 3, valid=False)
    served.poll()
    served.poll()  # not tried again
    assert served.served_version == "1"
    (broken,) = served.status("3")
    assert broken["state"] == "END" and broken["status"]["error_code"] == "INVALID_ARGUMENT"
    assert "holds no saved_model.pb" in broken["status"]["error_message"]
    assert [e["version"] for e in served.status()] == ["3", "2", "1"]


def test_the_poller_finds_a_new_version_by_itself(tmp_path):
    new_version(tmp_path, 1)
    served = versions.Versions(base_path=str(tmp_path), poll_s=0.05, loader=fake_loader)
    try:
        new_version(tmp_path, 7)
        deadline = time.monotonic() + 10
        while served.served_version != "7" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert served.served_version == "7"
    finally:
        served.stop()


# ------------------------------------------------------------------ the HTTP server, real exports

TEXTS = ["This coffee is delicious and fresh, I will buy again.", "Terrible. Stale and bland, a waste of money.",
         "The box was smaller than expected but my dog loves it.", "Great.", "Never again: it tasted of cardboard."]
NO_WORDS_TEXT = "12345 !!! 😀"


def tf_example(text: str) -> dict:
    example = tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))}))
    return {"b64": base64.b64encode(example.SerializeToString()).decode()}


@pytest.fixture(scope="module")
def export(trained_job):
    return latest_export(trained_job)


@pytest.fixture(scope="module")
def expected(export):
    """The export's own outputs for each text, called on that text alone."""
    signature = loaded_signature(export)
    return {text: {name: value[0].item() for name, value in served(signature, [text]).items()} for text in TEXTS}


def assert_predictions(got: list, texts: list, expected: dict) -> None:
    assert len(got) == len(texts)
    for prediction, text in zip(got, texts):
        assert set(prediction) == {"probability", "label", "num_words", "oov_fraction"}
        assert abs(prediction["probability"] - expected[text]["probability"]) <= 1e-5, text
        assert prediction["label"] == expected[text]["label"] and prediction["num_words"] == expected[text]["num_words"]


def test_concurrent_clients_each_get_their_own_predictions_equal_to_the_exports(export, expected):
    requests = [[TEXTS[(i + j) % len(TEXTS)] for j in range(i % 4 + 1)] for i in range(24)]
    with serving_at(model=export, batching=batching.BatchingOptions(batch_timeout_s=0.2)) as httpd:
        results = concurrently(lambda texts: http_json(httpd, "POST", "/predict", {"instances": texts}), requests)
        calls = httpd.batcher.calls
    for texts, (status, reply) in zip(requests, results):
        assert status == 200, reply
        assert_predictions(reply["predictions"], texts, expected)
    assert calls < len(requests)  # they did share calls


def test_request_formats_and_signatures_answer_like_tf_serving(export, expected):
    texts = TEXTS[:3]
    with serving_at(model=export) as httpd:
        row = http_json(httpd, "POST", "/v1/models/review_sentiment:predict", {"instances": [{"text": t} for t in texts]})
        columnar = http_json(httpd, "POST", "/v1/models/review_sentiment:predict", {"inputs": texts})
        named = http_json(httpd, "POST", "/predict", {"inputs": {"text": texts}, "signature_name": "serving_default"})
        examples = http_json(httpd, "POST", "/predict", {"signature_name": "serve_tf_example",
                                                         "instances": [tf_example(t) for t in texts]})
        wrapped = http_json(httpd, "POST", "/predict", {"signature_name": "serve_tf_example",
                                                        "inputs": {"examples": [tf_example(t) for t in texts]}})
        versioned = http_json(httpd, "POST", f"/v1/models/review_sentiment/versions/{os.path.basename(export)}:predict",
                              {"instances": texts})
        mixed = http_json(httpd, "POST", "/predict", {"instances": [TEXTS[0], NO_WORDS_TEXT, TEXTS[1]]})
        mixed_columns = http_json(httpd, "POST", "/predict", {"inputs": [NO_WORDS_TEXT, TEXTS[1]]})
    for status, reply in (row, examples, versioned):
        assert status == 200
        assert_predictions(reply["predictions"], texts, expected)
    for status, reply in (columnar, named, wrapped):
        assert status == 200 and set(reply) == {"outputs"}
        assert_predictions([{k: v[i] for k, v in reply["outputs"].items()} for i in range(3)], texts, expected)
    # A review with no words gets no score, in its place; the others are scored.
    status, reply = mixed
    assert status == 200
    assert reply["predictions"][1] == {"reason": "no_words", "detail": "the text has no words after cleaning: not scored",
                                       "num_words": 0}
    assert_predictions([reply["predictions"][0], reply["predictions"][2]], [TEXTS[0], TEXTS[1]], expected)
    status, reply = mixed_columns
    assert reply["outputs"]["probability"][0] is None and reply["outputs"]["label"][0] is None
    assert reply["outputs"]["num_words"] == [0, expected[TEXTS[1]]["num_words"]]


def test_status_metadata_and_unknown_routes_answer_like_tf_serving(export):
    version = os.path.basename(export)
    available = {"model_version_status": [{"version": version, "state": "AVAILABLE",
                                           "status": {"error_code": "OK", "error_message": ""}}]}
    with serving_at(model=export) as httpd:
        assert http_json(httpd, "GET", "/v1/models/review_sentiment") == (200, available)
        assert http_json(httpd, "GET", f"/v1/models/review_sentiment/versions/{version}") == (200, available)
        status, metadata = http_json(httpd, "GET", "/v1/models/review_sentiment/metadata")
        assert status == 200 and metadata["model_spec"] == {"name": "review_sentiment", "signature_name": "", "version": version}
        defs = metadata["metadata"]["signature_def"]["signature_def"]
        assert set(defs) == {"serving_default", "serve_tf_example", "transform_features"}
        assert defs["serving_default"]["inputs"]["text"]["dtype"] == "DT_STRING"
        assert defs["serving_default"]["inputs"]["text"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
        assert defs["serving_default"]["outputs"]["probability"]["dtype"] == "DT_FLOAT"
        assert http_json(httpd, "GET", "/health") == (200, {"status": "ok", "version": version})
        for method, path, payload in (("GET", "/v1/models/review_sentiment/versions/1", None),
                                      ("GET", "/v1/models/other", None),
                                      ("POST", "/v1/models/review_sentiment/versions/1:predict", {"instances": TEXTS}),
                                      ("POST", "/v1/models/other:predict", {"instances": TEXTS}),
                                      ("POST", "/v1/models/review_sentiment:classify", {"instances": TEXTS}),
                                      ("GET", "/nowhere", None)):
            status, reply = http_json(httpd, method, path, payload)
            assert status == 404 and set(reply) == {"error"}, (path, reply)


@pytest.fixture(scope="module")
def small_server(export):
    """One server for the bad requests: each must leave it serving the next."""
    with serving_at(model=export, max_instances=10, batching=batching.BatchingOptions(max_queued=10)) as httpd:
        yield httpd


@pytest.mark.parametrize("payload, status, message", [
    (b'{"instances": [3]}', 400, "every instance must be a string"),
    (b"{", 400, "the body is not JSON"),
    (b'{"instances": ["\\ud800"]}', 400, "lone surrogate"),
    (b'{"instances": []}', 400, "non-empty list"),
    (b'{"instances": ["a"], "inputs": ["b"]}', 400, "not both"),
    (b'{"instances": ["a"], "signature_name": "transform_features"}', 400, "signature_name"),
    (b'{"instances": [{"b64": "!!"}], "signature_name": "serve_tf_example"}', 400, "not base64"),
    (b'{"instances": [{"b64": "bm90IGFuIGV4YW1wbGU="}], "signature_name": "serve_tf_example"}', 400,
     "the model refused the input: Could not parse example input"),
    (b'{"instances": ["a"], "signature_name": ["serving_default"]}', 400, "signature_name"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    (json.dumps({"instances": ["a"] * 11}).encode(), 400, "11 instances: at most 10"),
])
def test_bad_requests_are_400_with_a_reason_and_the_server_goes_on(small_server, expected, payload, status, message):
    got, reply = http_json(small_server, "POST", "/predict", body=payload)
    assert got == status and message in reply["error"], reply
    status, reply = http_json(small_server, "POST", "/predict", {"instances": TEXTS[:1]})
    assert status == 200
    assert_predictions(reply["predictions"], TEXTS[:1], expected)


def raw_exchange(port: int, request: bytes, timeout: float = 30) -> bytes:
    """What the server answers to these bytes, up to its closing the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_body_too_large_is_refused_before_it_is_read_and_slow_clients_cost_bounded_time(export):
    with serving_at(model=export, max_request_bytes=1000, client_timeout_s=1.0) as httpd:
        port = httpd.server_address[1]
        started = time.monotonic()
        answer = raw_exchange(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413") and b"at most 1,000" in answer
        assert time.monotonic() - started < 5  # answered without waiting for the 100 GB
        # A client that waits for 100 Continue hears 413 instead.
        answer = raw_exchange(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413")
        # A Content-Length larger than the body: 408 and the connection closed after the client timeout.
        started = time.monotonic()
        answer = raw_exchange(port, b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"instances"')
        assert answer.startswith(b"HTTP/1.1 408") and b"the body stopped after 12 of 500 bytes" in answer
        assert 0.9 <= time.monotonic() - started < 10
        # A connection that sends nothing at all is closed after the client timeout, without a word.
        started = time.monotonic()
        assert raw_exchange(port, b"") == b"" and 0.9 <= time.monotonic() - started < 10
        assert raw_exchange(port, b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 411")
        assert http_json(httpd, "POST", "/predict", {"instances": TEXTS[:1]})[0] == 200
        # A client that sends its whole body before reading (no Expect) hears the 413 too, not a reset.
        status, reply = http_json(httpd, "POST", "/predict", body=b" " * 2**24)
        assert status == 413 and "at most 1,000" in reply["error"]
        # One reading of where a body ends (RFC 9112), as a proxy in front would read it.
        for headers, status in ((b"Content-Length: +3", 400), (b"Content-Length: 1_0", 400),
                                (b"Content-Length: 3\r\nContent-Length: 4", 400),
                                (b"Content-Length: 3\r\nTransfer-Encoding: chunked", 400),
                                (b"Transfer-Encoding: chunked", 411)):
            answer = raw_exchange(port, b"POST /predict HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n\r\n[1]")
            assert answer.startswith(b"HTTP/1.1 %d" % status), (headers, answer)


def test_a_body_left_unread_closes_the_connection_and_routes_ignore_query_strings(export, expected):
    import http.client

    with serving_at(model=export) as httpd:
        connection = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=30)
        body = json.dumps({"instances": TEXTS[:1]}).encode()
        for method, path, status in (("POST", "/nowhere", 404), ("POST", "/v1/models/other:predict", 404),
                                     ("POST", "/v1/models/review_sentiment/metadata", 405), ("GET", "/health", 200),
                                     ("POST", "/predict?trace=1", 200), ("GET", "/health?probe=1", 200),
                                     ("GET", "/predict", 405), ("HEAD", "/health", 200)):
            # The same client connection throughout: a body refused unread must not be read as the next request.
            connection.request(method, path, body=body if method == "POST" else None)
            reply = connection.getresponse()
            payload = reply.read()
            assert reply.status == status, (method, path, payload)
            assert (payload == b"") == (method == "HEAD")
        connection.close()


def started_server(*args: str) -> tuple[subprocess.Popen, int, list]:
    """python -m deploy.serving.server ARGS --port 0 as a process of its own: (it, its port, its stderr lines so far)."""
    process = subprocess.Popen([sys.executable, "-m", "deploy.serving.server", *args, "--port", "0"], cwd=REPO,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines, port = [], []

    def read():
        for line in process.stderr:
            lines.append(line)
            if line.startswith("serving ") and " on " in line and not port:
                port.append(int(line.rsplit(":", 1)[1]))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not port and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert port, "".join(lines)
    return process, port[0], lines


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_then_exits_0_and_faults_are_one_log_line(export, expected):
    process, port, lines = started_server("--model", export, "--client-timeout-seconds", "3")
    try:
        # A client that vanishes mid-body, and one that sends too little: one line each, no traceback.
        with socket.create_connection(("127.0.0.1", port)) as gone:
            gone.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        raw_exchange(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        body = json.dumps({"instances": TEXTS}).encode()
        in_flight = socket.create_connection(("127.0.0.1", port), timeout=60)
        in_flight.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # a keep-alive client of a load balancer
        kept.request("GET", "/health")
        assert kept.getresponse().read() and time.sleep(0.5) is None
        process.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # the accept loop notices within its 0.5 s poll
        with pytest.raises(OSError):  # no longer accepting
            raw_exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        kept.request("GET", "/health")
        draining = kept.getresponse()
        assert draining.status == 503 and json.loads(draining.read()) == {"error": "shutting down"}
        kept.close()
        in_flight.sendall(body[10:])
        answer = b""
        while chunk := in_flight.recv(65536):
            answer += chunk
        in_flight.close()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    head, reply = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert_predictions(json.loads(reply)["predictions"], TEXTS, expected)
    log = "".join(lines)
    assert "Traceback" not in log and lines[-1].startswith("serving: SIGTERM: stopped"), log
    assert sum("the body ended after 1 of 500 bytes" in line or "connection ended" in line for line in lines) >= 1, log
    assert sum('408: the body stopped after 1 of 500 bytes for 3 s' in line for line in lines) >= 1, log


def test_bad_options_are_one_line_errors(tmp_path):
    from tests.conftest import run_main

    for args, message in ((["--model-base-path", str(tmp_path / "none")], "is not a folder"),
                          (["--model", str(tmp_path)], "holds no saved_model.pb"),
                          ([], "--model or --model-base-path"),
                          (["--model", "x", "--max-instances", "20000"], "is below --max-instances"),
                          (["--model", "x", "--model-base-path", "y"], "not allowed with"),
                          (["--model", "x", "--port", "70000"], "a port is 0-65535"),
                          (["--model", "x", "--client-timeout-seconds", "0"], "--client-timeout-seconds 0: a number of seconds above 0"),
                          (["--model", "x", "--batch-timeout-ms", "nan"], "--batch-timeout-ms nan"),
                          (["--model", "x", "--file-system-poll-wait-seconds", "-1"], "--file-system-poll-wait-seconds -1")):
        result = run_main("deploy.serving.server", "--port", "0", *args)
        assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("serving: error: ")
        assert message in result.stderr, result.stderr
