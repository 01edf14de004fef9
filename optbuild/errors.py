"""The one exception type users see: its message is the whole `optbuild: error:` line."""

from __future__ import annotations

import errno
import re


class OptbuildError(Exception):
    """A failure the user can act on. The message says what went wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # survives the trip back from worker processes
        return (type(self), (self.message,))


# Lines that say where an error was raised, not what went wrong (OpenVINO, C++ checks, tracebacks).
_LOCATION = re.compile(r"^(Exception from \S+:\d+:?|Check '.*' failed at \S+|Traceback|File \"|at \S+:\d+)")


def file_problem(err: OSError, doing: str = "") -> str:
    """An OSError as what could not be done to which path, and what to do: a full disk or a
    read-only place is a write problem (choose another out_dir), a missing or unreadable file a
    read problem."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
        return f"cannot write{where} ({reason}): choose a writable out_dir=... (and cache_dir=...) with free space"
    if err.errno == errno.ENOTDIR:
        return (f"cannot use{where} ({reason}): a part of that path is a file, not a directory; choose a writable "
                "out_dir=... if it is the output")
    if err.errno == errno.ENOENT:
        return f"cannot find{where} ({reason}){doing}"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to access{where} ({reason}){doing}: check its permissions (or choose another out_dir)"
    return f"cannot read or write{where} ({reason}){doing}"


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message that says what went wrong (its type name when
    it has none), for one-line errors that wrap a toolkit's own exception: OpenVINO, for one,
    starts with lines naming its source files and gives the reason after them."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    telling = [line for line in lines if not _LOCATION.match(line)]
    return ((telling or lines) or [type(err).__name__])[0][:limit]
