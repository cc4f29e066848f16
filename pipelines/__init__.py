"""The Beam stages of preprocessing and batch scoring (their plain Python is in reviews/)."""
from reviews.errors import OneLineError


class PipelineError(OneLineError):
    """A pipeline command's one-line error (exit status 2): a bad option, input or output."""
