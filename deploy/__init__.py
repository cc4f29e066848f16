"""Dataflow, Vertex AI, serving and the workflow."""
from reviews.errors import OneLineError


class DeployError(OneLineError):
    """A deploy command's one-line error (exit status 2): a bad option, a refused run, a gate that says no push."""
