"""The one exception type our command lines report on one line with exit status 2."""


class OneLineError(Exception):
    """Something the user can act on: its message is the whole report, no traceback."""
