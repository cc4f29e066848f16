"""The data contract between the stages: what pipelines.preprocess writes and
the trainer, the evaluation, the server and the workflow read. Plain names, no
Beam, no TensorFlow at import (like the TFX taxi template's features.py)."""

VOCAB_NAME = "words"
TEXT, LABEL, REVIEW_ID, TIME = "text", "label", "review_id", "time"
TOKENS, NUM_WORDS = "tokens", "num_words"
PAD_ID = 0

SPLITS = ("train", "val", "test")
SUFFIX = ".tfrecord.gz"


def model_vocabulary_size(tft_output) -> int:
    """Embedding input size: the words found, plus padding and the OOV id."""
    return tft_output.vocabulary_size_by_name(VOCAB_NAME) + 2


def sequence_length(tft_output) -> int:
    return int(tft_output.transformed_feature_spec()[TOKENS].shape[0])
