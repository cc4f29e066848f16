"""The one exception type our command lines report on one line with exit
status 2, and the one way a command line ends on it.

Each layer raises its own subclass (pipelines.PipelineError,
trainer.TrainerError, deploy.DeployError; here StorageError, LockHeld and
ExportError), and every `main` is wrapped in `one_line_errors`: a user's
mistake or a fault of the machine is one line that says what to do, never a
traceback.
"""
import functools
import sys


class OneLineError(Exception):
    """Something the user can act on: its message is the whole report, no traceback."""


def one_line_errors(name: str):
    """A command's `main(argv)`, ending with `NAME: error: MESSAGE` on stderr and
    status 2 when it raises a OneLineError."""
    def decorate(main):
        @functools.wraps(main)
        def ended(argv=None) -> int:
            try:
                return main(argv)
            except OneLineError as error:
                print(f"{name}: error: {error}", file=sys.stderr)
                return 2
        return ended
    return decorate
