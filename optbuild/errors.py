"""The one exception type users see: its message is the whole `optbuild: error:` line."""


class OptbuildError(Exception):
    """A failure the user can act on. The message says what went wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # survives the trip back from worker processes
        return (type(self), (self.message,))
