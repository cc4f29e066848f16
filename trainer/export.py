"""One SavedModel that takes raw review text.

The transform graph (vocabulary table included) is tracked by the exported
module, so the very cleaning and id mapping used for training runs at serving
time. Signatures:
    serving_default     text: string[None]            → probability, label, num_words, oov_fraction
    serve_tf_example    examples: serialized tf.Example → probability, label, num_words, oov_fraction
    transform_features  text: string[None]            → tokens, num_words

Beside the SavedModel, assets.extra/profile.json (TF Serving's folder for
files that travel with a model) holds the validation split's profile
(reviews/drift.py), so that a scoring job can tell whether its data still
looks like the data the model learnt from.
"""
import json
import os
import shutil
import time

import keras
import tensorflow as tf
import tensorflow_transform as tft

from reviews.exports import PROFILE
from reviews.contract import NUM_WORDS, TEXT, TOKENS, model_vocabulary_size
from trainer.artifacts import variables_bytes
from trainer.data import cut_to_longest

THRESHOLD = 0.5
# A request is scored in length-sorted chunks of this many reviews.
SERVING_CHUNK = 32


class SentimentModule(tf.Module):
    """The models are masked, so a review's probability does not depend on its
    padding or its batch mates. That makes a speed step safe: a request is
    sorted by length and scored in chunks, each cut to its longest review (the
    LSTM steps through fewer columns), then put back in order. Scores equal
    those at the full 400 ids, one review at a time."""

    def __init__(self, model: keras.Model, tft_output: tft.TFTransformOutput):
        super().__init__()
        self.model = model
        self.transform_layer = tft_output.transform_features_layer()
        self.serving_feature_spec = {TEXT: tft_output.raw_feature_spec()[TEXT]}
        self.oov_id = model_vocabulary_size(tft_output) - 1

    def _transformed(self, text: tf.Tensor) -> dict:
        # Only the text is given: outputs that need the label are dropped.
        return self.transform_layer({TEXT: text})

    def _probabilities(self, tokens: tf.Tensor) -> tf.Tensor:
        return tf.reshape(tf.cast(self.model(tokens, training=False), tf.float32), [-1])

    def _length_sorted_probabilities(self, tokens: tf.Tensor) -> tf.Tensor:
        order = tf.argsort(tf.math.count_nonzero(tokens, axis=1))
        ordered = tf.gather(tokens, order)
        count = tf.shape(tokens)[0]
        chunks = (count + SERVING_CHUNK - 1) // SERVING_CHUNK
        scores = tf.TensorArray(tf.float32, size=chunks, infer_shape=False)

        def score_chunk(i, scores):
            chunk = ordered[i * SERVING_CHUNK:(i + 1) * SERVING_CHUNK]
            return i + 1, scores.write(i, self._probabilities(cut_to_longest(chunk)))

        _, scores = tf.while_loop(lambda i, _: i < chunks, score_chunk, [0, scores])
        return tf.scatter_nd(order[:, None], scores.concat(), [count])

    def _predictions(self, text: tf.Tensor) -> dict:
        transformed = self._transformed(text)
        tokens = transformed[TOKENS]
        probability = self._length_sorted_probabilities(tokens)
        kept_words = tf.maximum(tf.math.count_nonzero(tokens, axis=1), 1)
        # num_words 0: the text cleans to no words (emoji, digits, HTML only); its
        # probability is the model's prior, not a judgement, and our CLIs do not report it.
        return {"probability": probability, "label": tf.cast(probability >= THRESHOLD, tf.int64),
                "num_words": tf.reshape(transformed[NUM_WORDS], [-1]),
                # Of the ids the model reads: the drift check's out-of-vocabulary fraction.
                "oov_fraction": tf.cast(tf.math.count_nonzero(tokens == self.oov_id, axis=1) / kept_words, tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT)])
    def serve_text(self, text):
        return self._predictions(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_example(self, examples):
        return self._predictions(tf.io.parse_example(examples, self.serving_feature_spec)[TEXT])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT)])
    def transform_features(self, text):
        transformed = self._transformed(text)
        return {TOKENS: transformed[TOKENS], NUM_WORDS: transformed[NUM_WORDS]}


def versioned_dir(export_root: str) -> str:
    """TF Serving loads the highest numeric subdirectory of a model base path."""
    return os.path.join(export_root, str(int(time.time())))


def bytes_needed(model: keras.Model, data_dir: str) -> int:
    """About what an export takes on disk: the weights, the transform graph with its vocabulary, the serving graph."""
    transform_dir = os.path.join(data_dir, "transform_fn")
    transform = sum(tf.io.gfile.stat(os.path.join(root, name)).length
                    for root, _, names in tf.io.gfile.walk(transform_dir) for name in names)
    return variables_bytes(model.weights) + transform + 2**20  # + the serving graph (about 1 MiB)


def staging_dir(export_dir: str) -> str:
    """Where an export is written before it is published: locally a hidden folder
    beside it (TF Serving, the gate and the push load only numeric folders, so
    an export not yet published is never taken); an object store, or a folder
    named for us (Vertex's AIP_MODEL_DIR), is written in place."""
    if "://" in export_dir or os.path.exists(export_dir):
        return export_dir
    return os.path.join(os.path.dirname(export_dir), f".partial-{os.path.basename(export_dir)}")


def publish(export_dir: str) -> str:
    """Renames the staged export into place: a job publishes it last, just before metrics.json."""
    staged = staging_dir(export_dir)
    if staged != export_dir:
        os.rename(staged, export_dir)
    return export_dir


def export_model(model: keras.Model, tft_output: tft.TFTransformOutput, export_dir: str, profile: dict | None = None,
                 published: bool = True) -> str:
    """Writes the SavedModel whole or not at all (staging_dir, then publish;
    `published=False` leaves the publishing to the caller)."""
    module = SentimentModule(model, tft_output)
    signatures = {
        "serving_default": module.serve_text,
        "serve_tf_example": module.serve_tf_example,
        "transform_features": module.transform_features,
    }
    target = staging_dir(export_dir)
    if target != export_dir and os.path.exists(target):
        shutil.rmtree(target)  # what an earlier, failed export left
    tf.saved_model.save(module, target, signatures=signatures)
    if profile is not None:
        tf.io.gfile.makedirs(os.path.join(target, "assets.extra"))
        with tf.io.gfile.GFile(os.path.join(target, PROFILE), "w") as handle:
            json.dump(profile, handle, indent=2)
    return publish(export_dir) if published else export_dir
