"""User-facing errors: one line that says what is wrong and what to do, with every secret masked."""
from __future__ import annotations

import difflib
import errno
import sys
from typing import NoReturn

from .redaction import redact

__all__ = ["CosaError", "did_you_mean", "exit_with", "os_error_line", "redact"]


class CosaError(Exception):
    """An error caused by the user's input or setup; printed as one line, never as a traceback."""


def exit_with(error: CosaError | str, code: int = 2, *, own_line: bool = False) -> NoReturn:
    """Print ``cosa-eval: error: ...`` (redacted, one line) on stderr and exit non-zero, no traceback.

    ``own_line`` starts a new line first, for errors raised under another tool's progress bar.
    """
    message = " ".join(redact(str(error)).split())
    print(f"{chr(10) if own_line else ''}cosa-eval: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# errno -> what to do about it (the path and the system's own words come first)
_OS_FIXES = {
    errno.ENOSPC: "free some space, or write somewhere else",
    errno.EDQUOT: "free some of your quota, or write somewhere else",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "you may not write or read there; change its permissions or choose another path",
    errno.EPERM: "the operation is not permitted there; choose another path",
    errno.EEXIST: "something is already there; remove it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder, where a file is expected; choose another path",
    errno.ENOENT: "it does not exist (or a symlink on the way points nowhere); create it or fix the path",
    errno.ELOOP: "its symlinks loop; fix the link or choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def os_error_line(error: OSError) -> str:
    """One line for an ``OSError``: the path(s), the system's words and errno name, and what to do."""
    paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    code = errno.errorcode.get(error.errno, "") if error.errno is not None else ""
    reason = error.strerror or str(error) or type(error).__name__
    what = f"{reason} ({code})" if code else reason
    fix = _OS_FIXES.get(error.errno, "check the path and the disk, then run this again")
    return f"{paths + ': ' if paths else ''}{what}; {fix}"
