"""Faults the tests inject into the code they run."""

from typing import NoReturn


class Killed(BaseException):
    """The process ends here (a Lambda's timeout, a crash): nothing more of its code runs, and no handler of ours
    sees it (a BaseException, as the runtime's end is to the code)."""


def killed(*_args: object, **_kwargs: object) -> NoReturn:
    """Put in place of a call: the process ends as it makes it."""
    raise Killed()
