"""Training, evaluation and prediction with TensorFlow alone: imports reviews/, never Beam."""
from reviews.errors import OneLineError


class TrainerError(OneLineError):
    """A trainer command's one-line error (exit status 2): a bad option, data directory or job directory."""
