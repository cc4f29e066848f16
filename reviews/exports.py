"""Loading a trainer.task export for scoring: shared by trainer.predict,
pipelines.score, the server and the workflow's gate, so all of them refuse a
directory that is not one in the same words."""
import json
import os

import numpy as np
import tensorflow as tf

from reviews.errors import OneLineError

SIGNATURE = "serving_default"
TEXT = "text"
# Why a review gets no score: it cleans to no words (trainer.predict, pipelines.score and the server say so alike).
NO_WORDS = "no_words"
NO_WORDS_DETAIL = "the text has no words after cleaning: not scored"
# The validation split's profile (reviews/drift.py), written by trainer.task beside the SavedModel.
PROFILE = os.path.join("assets.extra", "profile.json")


class ExportError(OneLineError):
    """The directory is not an export of trainer.task."""


def export_problem(export_dir: str) -> str | None:
    """A cheap check before anything runs: is there a SavedModel at all."""
    if not tf.io.gfile.exists(export_dir):
        return f"{export_dir} does not exist"
    if not tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        return f"{export_dir} holds no saved_model.pb"
    return None


def numeric_versions(base_path: str) -> list[int]:
    """The numeric folders of a model base path, the versions TF Serving would load
    (ASCII digits only: a push's hidden .incoming-N folder is not one)."""
    if not tf.io.gfile.isdir(base_path):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base_path))
    return sorted(int(name) for name in names if name.isascii() and name.isdigit())


def error_summary(error: BaseException) -> str:
    """The line of an error that says what is wrong: TensorFlow's messages start
    with "Graph execution error:" and node names, and end with the cause."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = [line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "<stack traces",
                                                            "[[", "File "))]
    return (cause[-1] if cause else lines[0] if lines else type(error).__name__)[:300]


def loaded_export(export_dir: str, name: str = SIGNATURE):
    """The loaded SavedModel, or an ExportError saying what the directory is instead."""
    problem = export_problem(export_dir)
    if problem:
        raise ExportError(problem)
    try:
        loaded = tf.saved_model.load(export_dir)
    except Exception as error:  # noqa: BLE001  any damage (a cut variables file raises IndexError) is a bad export
        raise ExportError(f"{export_dir} cannot be loaded as a SavedModel: {error_summary(error)}") from None
    signatures = loaded.signatures
    if name not in signatures or TEXT not in signatures[name].structured_input_signature[1]:
        raise ExportError(f"{export_dir} is a SavedModel but not a trainer.task export: "
                          f"it has no {name!r} signature taking {TEXT!r} (it has {sorted(signatures) or 'none'})")
    return loaded


def loaded_signature(export_dir: str, name: str = SIGNATURE):
    """The export's raw-text signature, or an ExportError saying what the directory is instead."""
    return loaded_export(export_dir, name).signatures[name]


def training_profile(export_dir: str) -> dict | None:
    """The profile the export carries; None for an export made before it did."""
    path = os.path.join(export_dir, PROFILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def served(serving_fn, texts: list[str]) -> dict[str, np.ndarray]:
    """Every output of the raw-text signature for the texts, as numpy arrays."""
    return {name: value.numpy() for name, value in serving_fn(text=tf.constant(texts, dtype=tf.string)).items()}


def scored(serving_fn, texts: list[str]) -> list[tuple[float, int] | None]:
    """(probability, label) per text; None for a text with no words after cleaning
    (its probability would be the model's prior, not a judgement)."""
    outputs = served(serving_fn, texts)
    num_words = outputs["num_words"].tolist() if "num_words" in outputs else [1] * len(texts)
    pairs = zip(outputs["probability"].tolist(), outputs["label"].tolist())
    return [pair if words > 0 else None for pair, words in zip(pairs, num_words)]
