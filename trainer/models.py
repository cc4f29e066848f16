"""The notebook's two models and three beyond it, one builder each, in
backend-agnostic Keras 3 (`keras.ops` only; never `tf.keras`, which importing
tensorflow_transform turns into Keras 2).

    lstm1, lstm2   the notebook's (masked; see below)
    bilstm         a bidirectional LSTM, masked the same way
    fasttext       mean of learnt embeddings of words and hashed word bigrams
                   (Joulin et al., "Bag of Tricks for Efficient Text Classification")
    tfidf          logistic regression over TF-IDF weighted words and hashed
                   bigrams; document frequencies adapted on the train split

All read the same `tokens` (the TFRecords' contract is unchanged): the bag-of-
n-gram models form their features from the ids inside the model, so the export
serves them from raw text like the LSTMs.

Inputs are front-padded id sequences of any length (the TFRecords and the
export feed 400, a length-bucketed batch fewer), as Keras `pad_sequences`
writes them. A review's probability must not depend on how much padding it
gets, so the LSTMs are masked; and since cuDNN runs a masked LSTM only when
the padding is at the end, `PaddingToEnd` moves it there first.
"""
import keras
import numpy as np
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


def build_bilstm(vocab_size: int) -> keras.Model:
    """Embedding(V, 32) → Bidirectional(LSTM(64)) → Dense(1, sigmoid): 689,793 params at V=20000.

    The backward LSTM reads each review from its last word: with the padding
    moved to the end and masked, that is the review's own last word at any width."""
    tokens, x, mask = embedded_words(vocab_size)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64), name="bilstm")(x, mask=mask)
    probability = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(tokens, probability, name="bilstm")


# Hashed bigram buckets (primes, so `a * V + b` spreads over all of them).
FASTTEXT_BUCKETS = 262_139
TFIDF_BUCKETS = 1_048_573
FASTTEXT_DIM = 16


@keras.saving.register_keras_serializable(package="review_sentiment")
class NgramIds(keras.layers.Layer):
    """Front-padded word ids → the review's n-gram feature ids, 0 for none.

    Words keep their ids (1..V-1); the bigram of words a, b (consecutive after
    cleaning) gets V + (a·V + b) mod buckets. Padding yields 0 and no bigram
    spans it, so a review's features are the same at any width."""

    def __init__(self, vocab_size: int, buckets: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.buckets = vocab_size, buckets

    @property
    def feature_count(self) -> int:
        return self.vocab_size + self.buckets

    def call(self, tokens):
        tokens = ops.cast(tokens, "int64")
        words = ops.not_equal(tokens, 0)
        # Shifting left by one pairs each word with the next; the next of the
        # last column is padding.
        following = ops.concatenate([tokens[:, 1:], ops.zeros_like(tokens[:, :1])], axis=1)
        is_bigram = ops.logical_and(words, ops.not_equal(following, 0))
        bigrams = self.vocab_size + (tokens * self.vocab_size + following) % self.buckets
        return ops.concatenate([tokens, ops.where(is_bigram, bigrams, ops.zeros_like(bigrams))], axis=1)

    def compute_output_spec(self, tokens):
        width = None if tokens.shape[1] is None else 2 * tokens.shape[1]
        return keras.KerasTensor((tokens.shape[0], width), dtype="int64")

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "buckets": self.buckets}


@keras.saving.register_keras_serializable(package="review_sentiment")
class MeanEmbedding(keras.layers.Layer):
    """Feature ids → the mean of their embeddings (id 0, no feature, is left out)."""

    def __init__(self, feature_count: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.feature_count, self.dim = feature_count, dim
        self.embedding = keras.layers.Embedding(feature_count, dim, name="embedding")

    def build(self, input_shape):
        self.embedding.build(input_shape)

    def call(self, features):
        present = ops.expand_dims(ops.cast(ops.not_equal(features, 0), self.compute_dtype), -1)
        total = ops.sum(self.embedding(features) * present, axis=1)
        return total / ops.maximum(ops.sum(present, axis=1), 1.0)

    def compute_output_spec(self, features):
        return keras.KerasTensor((features.shape[0], self.dim), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "feature_count": self.feature_count, "dim": self.dim}


def build_fasttext(vocab_size: int) -> keras.Model:
    """Words + hashed bigrams → Embedding(V + 262,139, 16), mean → Dense(1, sigmoid)."""
    tokens = keras.Input(shape=(None,), dtype="int64", name="tokens")
    ngrams = NgramIds(vocab_size, FASTTEXT_BUCKETS, name="ngrams")
    x = MeanEmbedding(ngrams.feature_count, FASTTEXT_DIM, name="mean_embedding")(ngrams(tokens))
    probability = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(tokens, probability, name="fasttext")


@keras.saving.register_keras_serializable(package="review_sentiment")
class TfidfLogit(keras.layers.Layer):
    """Feature ids → w · tfidf(review) + b, the logit of a logistic regression
    over scikit-learn's TfidfVectorizer(sublinear_tf=True, min_df=2) vector:
    each feature f counted c times weighs (1 + ln c) · idf[f], the vector is
    L2-normalised. Computed on the ids directly (sorted per review, repeats
    counted by segment sums), never as a dense V-wide vector.

    `idf` is a non-trainable weight, set by `adapt_idf` from the train split's
    document frequencies: smooth idf ln((1 + n) / (1 + df)) + 1, and 0 for a
    feature seen in fewer than `min_df` train reviews (scikit-learn drops those).
    It is saved with the model, so serving uses exactly the train statistics.
    Until adapted every feature weighs 1.

    The bias enters as BIAS_SCALE · bias, like a feature of that constant
    value: every review has it, so at full value it would be the steepest
    direction of the loss, and a step size that suits the normalised TF-IDF
    features (SGD at 20) would make it oscillate and grow."""

    BIAS_SCALE = 0.1

    def __init__(self, feature_count: int, min_df: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.feature_count, self.min_df = feature_count, min_df

    def build(self, input_shape):
        self.idf = self.add_weight(shape=(self.feature_count,), initializer="ones", trainable=False, name="idf")
        self.coefficients = self.add_weight(shape=(self.feature_count,), initializer=keras.initializers.RandomNormal(stddev=0.05),
                                            name="coefficients")
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")

    def call(self, features):
        rows, width = ops.shape(features)[0], ops.shape(features)[1]
        ordered = ops.sort(features, axis=1)
        starts = ops.concatenate([ops.ones_like(ordered[:, :1], dtype="bool"),
                                  ops.not_equal(ordered[:, 1:], ordered[:, :-1])], axis=1)
        # Runs of one feature id within a review, numbered across the batch.
        runs = ops.cumsum(ops.cast(starts, "int32"), axis=1) - 1 + ops.expand_dims(ops.arange(rows, dtype="int32") * width, 1)
        runs = ops.reshape(runs, (-1,))
        counts = ops.take(ops.segment_sum(ops.ones_like(runs, dtype="float32"), runs, num_segments=rows * width), runs)
        counts = ops.reshape(counts, (rows, width))
        idf = ops.where(ops.not_equal(ordered, 0), ops.take(ops.cast(self.idf, "float32"), ordered), 0.0)
        value = (1.0 + ops.log(counts)) * idf  # per distinct feature; each of its c occurrences carries 1/c of it
        norm = ops.sqrt(ops.sum(value * value / counts, axis=1, keepdims=True))
        weights = value / counts / ops.maximum(norm, 1e-12)
        coefficients = ops.take(ops.cast(self.coefficients, "float32"), ordered)
        return ops.sum(weights * coefficients, axis=1, keepdims=True) + self.BIAS_SCALE * ops.cast(self.bias, "float32")

    def compute_output_spec(self, features):
        return keras.KerasTensor((features.shape[0], 1), dtype="float32")

    def adapt_idf(self, document_frequency, documents: int) -> None:
        document_frequency = np.asarray(document_frequency, np.float64)
        idf = np.log((1.0 + documents) / (1.0 + document_frequency)) + 1.0
        self.idf.assign(np.where(document_frequency >= self.min_df, idf, 0.0).astype("float32"))

    def get_config(self):
        return {**super().get_config(), "feature_count": self.feature_count, "min_df": self.min_df}


def build_tfidf(vocab_size: int) -> keras.Model:
    """Words + hashed bigrams → TF-IDF (train-split idf) → logistic regression: V + 1,048,573 weights."""
    tokens = keras.Input(shape=(None,), dtype="int64", name="tokens")
    ngrams = NgramIds(vocab_size, TFIDF_BUCKETS, name="ngrams")
    logit = TfidfLogit(ngrams.feature_count, name="tfidf_logit")(ngrams(tokens))
    probability = keras.layers.Activation("sigmoid", dtype="float32", name="probability")(logit)
    return keras.Model(tokens, probability, name="tfidf")


def document_frequencies(features: np.ndarray, feature_count: int) -> np.ndarray:
    """How many of these reviews (rows of feature ids, 0 = none) hold each feature."""
    ordered = np.sort(features, axis=1)
    first = np.ones(ordered.shape, bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return np.bincount(ordered[first & (ordered != 0)], minlength=feature_count)


def learns_idf(model: keras.Model) -> bool:
    """Whether `adapted` has statistics to learn for this model (tfidf's idf)."""
    return any(isinstance(layer, TfidfLogit) for layer in model.layers)


def adapted(model: keras.Model, token_batches) -> keras.Model:
    """Sets a tfidf model's idf from the train split (an iterable of token
    batches); other models are returned as they are. Keras preprocessing layers
    call this `adapt`: statistics learnt from training data, before fit."""
    if not learns_idf(model):
        return model
    layers = {type(layer): layer for layer in model.layers}
    ngrams, tfidf = layers[NgramIds], layers[TfidfLogit]
    frequency, documents = np.zeros(ngrams.feature_count, np.int64), 0
    for tokens in token_batches:
        frequency += document_frequencies(np.asarray(ngrams(tokens)), ngrams.feature_count)
        documents += int(np.shape(tokens)[0])
    tfidf.adapt_idf(frequency, documents)
    return model


BUILDERS = {"lstm1": build_lstm1, "lstm2": build_lstm2, "bilstm": build_bilstm, "fasttext": build_fasttext,
            "tfidf": build_tfidf}


def compiled(model: keras.Model, learning_rate: float, optimizer: str = "adam") -> keras.Model:
    step = (keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9) if optimizer == "sgd"
            else keras.optimizers.Adam(learning_rate=learning_rate))
    model.compile(
        optimizer=step,
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model
