"""The one exception type users see: its message is the whole `optbuild: error:` line."""

from __future__ import annotations


class OptbuildError(Exception):
    """A failure the user can act on. The message says what went wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # survives the trip back from worker processes
        return (type(self), (self.message,))


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line
    errors that wrap a toolkit's own exception."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]
