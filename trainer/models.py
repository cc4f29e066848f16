"""The notebook's two models, one builder each (Keras 3: never `tf.keras`,
which importing tensorflow_transform turns into Keras 2).

Inputs are front-padded id sequences of any length (the export feeds 400, a
length-bucketed batch feeds fewer). No masking: with front padding, cuDNN's
masked LSTM would refuse the input, and the notebook used none either.
"""
import keras

EMBEDDING_DIM = 32


def build_lstm1(vocab_size: int) -> keras.Model:
    """Embedding(V, 32) → LSTM(100) → Dense(1, sigmoid): 693,301 params at V=20000."""
    tokens = keras.Input(shape=(None,), dtype="int64", name="tokens")
    x = keras.layers.Embedding(vocab_size, EMBEDDING_DIM, name="embedding")(tokens)
    x = keras.layers.LSTM(100, name="lstm")(x)
    probability = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(tokens, probability, name="lstm1")


def build_lstm2(vocab_size: int) -> keras.Model:
    """Embedding(V, 32) → LSTM(100) → LSTM(32) → Dense(1, sigmoid): 710,257 params at V=20000."""
    tokens = keras.Input(shape=(None,), dtype="int64", name="tokens")
    x = keras.layers.Embedding(vocab_size, EMBEDDING_DIM, name="embedding")(tokens)
    x = keras.layers.LSTM(100, return_sequences=True, name="lstm_1")(x)
    x = keras.layers.LSTM(32, name="lstm_2")(x)
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
