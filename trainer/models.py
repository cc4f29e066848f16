"""The notebook's two models, one builder each, in backend-agnostic Keras 3
(`keras.ops` only; never `tf.keras`, which importing tensorflow_transform turns
into Keras 2).

Inputs are front-padded id sequences of any length (the TFRecords and the
export feed 400, a length-bucketed batch fewer), as Keras `pad_sequences`
writes them. A review's probability must not depend on how much padding it
gets, so the LSTMs are masked; and since cuDNN runs a masked LSTM only when
the padding is at the end, `PaddingToEnd` moves it there first.
"""
import keras
from keras import ops

EMBEDDING_DIM = 32


@keras.saving.register_keras_serializable(package="review_sentiment")
class PaddingToEnd(keras.layers.Layer):
    """Front-padded ids → (the same ids with the padding moved to the end, the
    mask of the steps an LSTM must read).

    The mask is right-padded and never all False: a review with no known word
    keeps one step (a padding id), because cuDNN rejects a fully masked row.
    That step is the same at any padded width, so the output stays neutral.
    """

    def call(self, tokens):
        width = ops.shape(tokens)[1]
        lengths = ops.sum(ops.cast(ops.not_equal(tokens, 0), "int32"), axis=1, keepdims=True)
        positions = ops.expand_dims(ops.arange(width, dtype="int32"), 0)
        # Row r, column j takes column (j + padding_r) mod width: the words first, then the zeros.
        rolled = ops.take_along_axis(tokens, (positions + width - lengths) % width, axis=1)
        return rolled, positions < ops.maximum(lengths, 1)

    def compute_output_spec(self, tokens):
        return (keras.KerasTensor(tokens.shape, dtype=tokens.dtype), keras.KerasTensor(tokens.shape, dtype="bool"))


def embedded_words(vocab_size: int) -> tuple:
    """(tokens input, embedded steps with padding at the end, their mask)."""
    tokens = keras.Input(shape=(None,), dtype="int64", name="tokens")
    right_padded, mask = PaddingToEnd(name="padding_to_end")(tokens)
    return tokens, keras.layers.Embedding(vocab_size, EMBEDDING_DIM, name="embedding")(right_padded), mask


def build_lstm1(vocab_size: int) -> keras.Model:
    """Embedding(V, 32) → LSTM(100) → Dense(1, sigmoid): 693,301 params at V=20000."""
    tokens, x, mask = embedded_words(vocab_size)
    x = keras.layers.LSTM(100, name="lstm")(x, mask=mask)
    probability = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(tokens, probability, name="lstm1")


def build_lstm2(vocab_size: int) -> keras.Model:
    """Embedding(V, 32) → LSTM(100) → LSTM(32) → Dense(1, sigmoid): 710,257 params at V=20000."""
    tokens, x, mask = embedded_words(vocab_size)
    x = keras.layers.LSTM(100, return_sequences=True, name="lstm_1")(x, mask=mask)
    x = keras.layers.LSTM(32, name="lstm_2")(x, mask=mask)
    probability = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(tokens, probability, name="lstm2")


BUILDERS = {"lstm1": build_lstm1, "lstm2": build_lstm2}


def compiled(model: keras.Model, learning_rate: float) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model
