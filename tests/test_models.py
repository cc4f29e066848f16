import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import models

VOCAB = 50
# The module, not the `rnn` function that the package exports under the same name.
tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")


@pytest.mark.parametrize("name, params", [
    ("lstm1", 693_301), ("lstm2", 710_257),  # the notebook's
    ("bilstm", 20000 * 32 + 2 * 4 * (64 * (32 + 64) + 64) + 129),
    ("fasttext", (20000 + models.FASTTEXT_BUCKETS) * 16 + 17),
    ("tfidf", 2 * (20000 + models.TFIDF_BUCKETS) + 1),  # coefficients, idf (not trained), bias
])
def test_parameter_counts_at_20k_vocabulary(name, params):
    assert models.BUILDERS[name](20000).count_params() == params


def test_ngram_ids_are_words_and_bigrams_of_adjacent_words_never_spanning_padding():
    tokens = np.array([[0, 0, 3, 4, 3, 4], [0, 0, 0, 0, 0, 5], [0, 0, 0, 0, 0, 0]], np.int64)
    features = np.asarray(models.NgramIds(10, 7)(tokens))
    bigram = lambda a, b: 10 + (a * 10 + b) % 7  # noqa: E731
    assert features.shape == (3, 12)
    assert sorted(features[0][features[0] > 0]) == sorted([3, 4, 3, 4, bigram(3, 4), bigram(4, 3), bigram(3, 4)])
    assert sorted(features[1][features[1] > 0]) == [5] and not features[2].any()


def test_document_frequency_counts_a_feature_once_per_review():
    features = np.array([[0, 2, 2, 5], [5, 5, 0, 0], [1, 2, 3, 0]])
    np.testing.assert_array_equal(models.document_frequencies(features, 7), [0, 1, 2, 1, 0, 2, 0])


def test_tfidf_logit_is_a_logistic_regression_on_scikit_learns_tfidf_vector():
    """The same idf, sublinear tf, min_df=2 and L2 normalisation as
    TfidfVectorizer, fed the model's own feature ids as the "words"."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(11)
    train = [front_padded(rng.integers(1, 12, size=n), 40) for n in rng.integers(1, 40, size=60)]
    test = [front_padded(rng.integers(1, 12, size=n), 40) for n in (1, 3, 17, 40, 0)]
    test[1][-3:] = [4, 4, 4]  # one word three times: sublinear tf
    model = models.build_tfidf(12)
    ngrams, tfidf = model.get_layer("ngrams"), model.get_layer("tfidf_logit")
    models.adapted(model, [np.stack(train[:25]), np.stack(train[25:])])
    coefficients = rng.normal(size=ngrams.feature_count).astype("float32")
    tfidf.coefficients.assign(coefficients)
    tfidf.bias.assign(3.0)  # enters as 0.3 (BIAS_SCALE)

    as_words = lambda batch: [[str(f) for f in row if f] for row in np.asarray(ngrams(np.stack(batch)))]  # noqa: E731
    vectorizer = TfidfVectorizer(analyzer=lambda words: words, sublinear_tf=True, min_df=2)
    vectorizer.fit(as_words(train))
    weights = np.array([coefficients[int(word)] for word in vectorizer.get_feature_names_out()])
    expected = vectorizer.transform(as_words(test)) @ weights + 0.3
    logits = np.asarray(tfidf(ngrams(np.stack(test)))).reshape(-1)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert logits[-1] == pytest.approx(0.3)  # no words: the bias alone


def front_padded(words: np.ndarray, width: int) -> np.ndarray:
    """As Keras pad_sequences (and the TFRecords) lay a review out: zeros first, the tail kept."""
    words = words[len(words) - min(len(words), width):]
    return np.concatenate([np.zeros(width - len(words), np.int64), words]).astype(np.int64)


def random_reviews(seed: int, lengths) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, VOCAB, size=n) for n in lengths]


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_a_review_scores_the_same_alone_in_any_batch_and_at_any_padding(name):
    """Every model, present and future: padding and batch mates must not move a probability."""
    keras.utils.set_random_seed(3)
    model = models.compiled(models.BUILDERS[name](VOCAB), learning_rate=1e-3)
    reviews = random_reviews(0, [5, 1, 23, 0, 60, 2])
    long_ones = random_reviews(1, [390, 400, 250])

    alone = np.array([model.predict(front_padded(r, max(len(r), 1))[None], verbose=0)[0, 0] for r in reviews])
    at_400 = model.predict(np.stack([front_padded(r, 400) for r in reviews]), verbose=0)[:, 0]
    mixed = np.stack([front_padded(r, 400) for r in long_ones[:2] + reviews + long_ones[2:]])
    with_long_mates = model.predict(mixed, verbose=0)[2:2 + len(reviews), 0]
    at_80 = model.predict(np.stack([front_padded(r, 80) for r in reviews]), verbose=0)[:, 0]  # any width >= the longest
    reversed_batch = model.predict(np.stack([front_padded(r, 61) for r in reviews[::-1]]), verbose=0)[::-1, 0]

    for other in (at_400, with_long_mates, at_80, reversed_batch):
        np.testing.assert_allclose(other, alone, atol=1e-5, rtol=0)
    assert np.all((alone > 0) & (alone < 1))
    # Not trivially constant: different reviews get different scores.
    assert np.ptp(alone) > 1e-4


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_cutting_a_review_to_its_tail_is_the_same_as_the_model_seeing_that_tail(name):
    keras.utils.set_random_seed(4)
    model = models.BUILDERS[name](VOCAB)
    review = random_reviews(2, [120])[0]
    truncated_input = model.predict(front_padded(review, 40)[None], verbose=0)[0, 0]
    tail_alone = model.predict(review[-40:][None].astype(np.int64), verbose=0)[0, 0]
    assert abs(truncated_input - tail_alone) <= 1e-5


def test_padding_moves_to_the_end_with_a_right_padded_mask():
    tokens = np.array([[0, 0, 7, 8, 9], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [0, 0, 0, 0, 6]], np.int64)
    right_padded, mask = models.PaddingToEnd()(tokens)
    np.testing.assert_array_equal(np.asarray(right_padded), [[7, 8, 9, 0, 0], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [6, 0, 0, 0, 0]])
    # An empty review keeps one (padding) step: cuDNN rejects fully masked rows.
    np.testing.assert_array_equal(np.asarray(mask), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]])


def lstm_layers(model: keras.Model) -> list:
    """The model's LSTMs, those inside a Bidirectional wrapper too."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.LSTM):
            found.append(layer)
    return found


RECURRENT = sorted(name for name, build in models.BUILDERS.items() if lstm_layers(build(VOCAB)))


def test_the_recurrent_models_are_the_three_lstms():
    assert RECURRENT == ["bilstm", "lstm1", "lstm2"]


@pytest.mark.parametrize("name", RECURRENT)
def test_every_lstm_receives_a_cudnn_eligible_mask(name, monkeypatch):
    """cuDNN takes a masked LSTM only if the mask is right-padded with no empty
    row (Keras' own checks, used here on CPU); record what each LSTM is given."""
    model = models.BUILDERS[name](VOCAB)
    received = []
    for layer in lstm_layers(model):
        def recording(sequences, initial_state, mask, training=False, _inner=layer.inner_loop):
            received.append(mask)
            return _inner(sequences, initial_state, mask, training=training)
        monkeypatch.setattr(layer, "inner_loop", recording)
    batch = np.stack([front_padded(r, 30) for r in random_reviews(5, [3, 30, 0, 12])])
    model(batch)  # eager, so the masks are concrete
    assert len(received) == len(lstm_layers(model)) >= 1
    for mask in received:
        assert mask is not None
        assert bool(tf_rnn._is_sequence_right_padded(mask)) and not bool(tf_rnn._has_fully_masked_sequence(mask))
        np.testing.assert_array_equal(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1).numpy(), [3, 30, 1, 12])


def test_models_compile_with_the_notebook_settings():
    model = models.compiled(models.build_lstm1(VOCAB), learning_rate=1e-3)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss.__class__ is keras.losses.BinaryCrossentropy


def test_mixed_bfloat16_keeps_the_output_layer_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build_lstm1(30)
        assert model.get_layer("lstm").compute_dtype == "bfloat16"
        output = model(np.ones((2, 7), dtype="int64"))
        assert keras.backend.standardize_dtype(output.dtype) == "float32" and np.isfinite(np.asarray(output)).all()
    finally:
        keras.config.set_dtype_policy(previous)


def test_every_model_has_a_recipe_and_every_recipe_a_model():
    from trainer import recipes

    assert recipes.MODEL_NAMES == tuple(sorted(models.BUILDERS)) == tuple(sorted(recipes.RECIPES))
