import tempfile

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from tensorflow_transform.tf_metadata import dataset_metadata

from pipelines import transform


def words_of(text: str) -> list[str]:
    return [w.decode() for w in transform.cleaned_words(tf.constant([text]))[0].numpy()]


def test_cleaning_strips_html_entities_and_non_letters():
    text = 'Great<br /><br />coffee &quot;DARK&quot; roast, 100% <a href="http://x.com/p">link</a> café!'
    assert words_of(text) == ["great", "coffee", "dark", "roast", "link", "caf"]


def test_stopwords_removed_but_negations_kept():
    assert words_of("It is not good and I don't like it, nor would I ever buy it. No!") == [
        "not", "good", "don", "like", "nor", "would", "ever", "buy", "no"]


def test_keep_stopwords_skips_only_the_stopword_step():
    text = "It was TOO sweet, but <br />very fresh &amp; I'd buy it again."
    kept = [w.decode() for w in transform.cleaned_words(tf.constant([text]), keep_stopwords=True)[0].numpy()]
    assert kept == ["it", "was", "too", "sweet", "but", "very", "fresh", "i", "d", "buy", "it", "again"]
    assert words_of(text) == ["sweet", "fresh", "buy"]


def test_text_with_nothing_left_after_cleaning_is_empty():
    assert words_of("<br /> &amp; 123 !!! the and of") == []


def test_a_batch_is_cleaned_row_by_row_whatever_its_size():
    # The batch is cut into slices cleaned side by side; rows must come back in
    # order and unmixed, also when there are fewer rows than slices.
    texts = ["Not <b>good</b>", "", "the", "Café &amp; tea!!", "I never liked it", "yes\nno", "a b c d e"]
    for size in range(len(texts) + 1):
        batch = transform.cleaned_words(tf.constant(texts[:size], dtype=tf.string)).to_list()
        assert [[w.decode() for w in row] for row in batch] == [words_of(t) for t in texts[:size]]


def test_front_padding_and_truncation_keep_the_end():
    ids = tf.ragged.constant([[1, 2, 3], [], [4, 5, 6, 7, 8, 9]], dtype=tf.int64)
    padded = transform.front_padded(ids, 5).numpy()
    np.testing.assert_array_equal(padded, [[0, 0, 1, 2, 3], [0, 0, 0, 0, 0], [5, 6, 7, 8, 9]])


def tokens_are(expected: dict):
    """An assert_that matcher: review_id → expected tokens (it runs in a worker,
    so it checks there instead of handing results back)."""
    def check(actual):
        got = {int(row["review_id"]): list(row["tokens"]) for row in actual}
        if got != expected:
            raise BeamAssertException(f"tokens {got} != {expected}")
    return check


def assert_transformed(train_texts, other_texts, vocab_size, max_length, train_expected, other_expected):
    """Runs the real preprocessing_fn through tf.Transform: vocabulary from
    train only, applied to the other texts."""
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(transform.RAW_FEATURE_SPEC)
    rows = lambda texts: [{"text": t, "label": 1, "review_id": i, "time": 0} for i, t in enumerate(texts)]  # noqa: E731
    with beam.Pipeline(runner="FnApiRunner") as p, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        train_out, transform_fn = (p | "Train" >> beam.Create(rows(train_texts)), metadata) | tft_beam.AnalyzeAndTransformDataset(
            transform.preprocessing_fn_for(vocab_size, max_length))
        other_out = ((p | "Other" >> beam.Create(rows(other_texts)), metadata), transform_fn) | tft_beam.TransformDataset()
        assert_that(train_out[0], tokens_are(train_expected), label="train")
        assert_that(other_out[0], tokens_are(other_expected), label="other")
        num_words = other_out[0] | beam.Map(lambda row: (int(row["review_id"]), int(row["num_words"])))
        assert_that(num_words, equal_to([(0, 4)]), label="num_words")


def test_vocabulary_from_train_only_with_padding_and_oov_ids():
    # V=4: 0 pad, 1 "tasty" (most frequent), 2 "snack", 3 OOV ("crunchy" fell outside top_k=2).
    assert_transformed(
        ["tasty tasty tasty snack snack crunchy", "tasty snack"], ["tasty unseen crunchy words"], vocab_size=4, max_length=6,
        train_expected={0: [1, 1, 1, 2, 2, 3], 1: [0, 0, 0, 0, 1, 2]},
        other_expected={0: [0, 0, 1, 3, 3, 3]},
    )
