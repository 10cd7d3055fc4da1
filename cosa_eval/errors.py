"""User-facing errors: one line that says what is wrong and what to do, with every secret masked."""
from __future__ import annotations

import difflib
import sys
from typing import NoReturn

from .redaction import redact

__all__ = ["CosaError", "did_you_mean", "exit_with", "redact"]


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
