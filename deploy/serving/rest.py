"""TF Serving's REST request and reply formats, for our export.

Two request formats, as TF Serving's REST API has them:
- row ("instances"): a list, one entry a review; answered {"predictions": [...]},
  one object per review with the signature's outputs;
- columnar ("inputs"): a list, or {"text": [...]} ({"examples": [...]} for
  serve_tf_example); answered {"outputs": {"probability": [...], ...}}.
Both in one request, or neither, is a bad request.

"signature_name" picks serving_default (raw text: a string or {"text": a
string} per review) or serve_tf_example (a serialized tf.Example with a
`text` feature, base64-encoded as {"b64": "..."}, or {"examples": {"b64": ...}}).

A review that cleans to no words gets no score, as trainer.predict and
pipelines.score treat it: in the row format its place holds
{"reason": "no_words", "detail": ..., "num_words": 0} instead of a
prediction; in the columnar format its probability and label are null.
"""
import base64
import binascii
import dataclasses
import json

import numpy as np

from reviews.exports import NO_WORDS, NO_WORDS_DETAIL

from deploy.serving.versions import PREDICT_SIGNATURES


class BadRequest(Exception):
    """The body is not a request we can answer (400)."""


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    signature: str
    inputs: list  # str (review text) or bytes (serialized tf.Example)
    columnar: bool


def parsed(body: bytes) -> object:
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the body is not JSON: {str(error)[:200]}") from None


def text_of(entry) -> str:
    text = entry.get("text") if isinstance(entry, dict) and len(entry) == 1 else entry
    if not isinstance(text, str):
        raise BadRequest('every instance must be a string or {"text": a string}')
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("a text holds a lone surrogate escape (\\ud800-\\udfff): not Unicode text") from None
    return text


def example_of(entry) -> bytes:
    if isinstance(entry, dict) and set(entry) == {"examples"}:
        entry = entry["examples"]
    if not (isinstance(entry, dict) and set(entry) == {"b64"} and isinstance(entry["b64"], str)):
        raise BadRequest('serve_tf_example takes serialized tf.Examples as {"b64": "..."}')
    try:
        return base64.b64decode(entry["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("a b64 value is not base64") from None


def predict_request(body: bytes, max_instances: int) -> PredictRequest:
    request = parsed(body)
    if not isinstance(request, dict):
        raise BadRequest('expected {"instances": [...]} or {"inputs": [...]}')
    signature = request.get("signature_name") or "serving_default"
    if not isinstance(signature, str) or signature not in PREDICT_SIGNATURES:
        raise BadRequest(f"signature_name {str(signature)[:100]!r}: one of {', '.join(PREDICT_SIGNATURES)}")
    if ("instances" in request) == ("inputs" in request):
        raise BadRequest('give either "instances" (row format) or "inputs" (columnar format), not both'
                         if "inputs" in request else 'expected {"instances": [...]} or {"inputs": [...]}')
    columnar = "inputs" in request
    entries = request["inputs"] if columnar else request["instances"]
    if columnar and isinstance(entries, dict):
        argument = PREDICT_SIGNATURES[signature]
        if set(entries) != {argument}:
            raise BadRequest(f'columnar inputs of {signature} are {{"{argument}": [...]}}')
        entries = entries[argument]
    if not isinstance(entries, list) or not entries:
        raise BadRequest("expected a non-empty list of reviews")
    if len(entries) > max_instances:
        raise BadRequest(f"{len(entries):,} instances: at most {max_instances:,} a request")
    convert = text_of if signature == "serving_default" else example_of
    return PredictRequest(signature, [convert(entry) for entry in entries], columnar)


def reply(request: PredictRequest, outputs: dict[str, np.ndarray]) -> dict:
    """The signature's outputs in the request's format, with no score where a review has no words."""
    names = sorted(outputs)
    columns = {name: outputs[name].tolist() for name in names}
    no_words = [n == 0 for n in columns["num_words"]] if "num_words" in columns else [False] * len(request.inputs)
    if request.columnar:
        for name in ("probability", "label"):
            if name in columns:
                columns[name] = [None if empty else value for value, empty in zip(columns[name], no_words)]
        return {"outputs": columns}
    return {"predictions": [{"reason": NO_WORDS, "detail": NO_WORDS_DETAIL, "num_words": 0} if empty
                            else {name: columns[name][i] for name in names} for i, empty in enumerate(no_words)]}
