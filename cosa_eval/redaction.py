"""Secrets masked by value: every credential in play, wherever it appears in text we print or write.

The credentials are the values of secret-named environment variables (``OPENAI_API_KEY``,
``AZURE_OPENAI_API_KEY``, ``*_TOKEN``, ``*_SECRET``), the user, password and query values of every
URL in use (``OPENAI_BASE_URL``, ``AZURE_OPENAI_ENDPOINT`` and any URL given on the command line or
in a judge.yaml, registered with :func:`remember_url`), plus key-shaped text (``Bearer …``,
``sk-…``, a URL's ``user:pass@`` or ``?key=…``). A value of eight characters or more is masked
wherever it appears; a shorter one wherever it stands alone (not inside a longer word), so a
three-letter key is masked in ``Bearer abc`` without rewriting every word that contains it. One or
two characters (a local server's ``x``) protect nothing and are left alone, so numbers stay true.
Every pattern here is linear in the length of the text.
"""
from __future__ import annotations

import os
import re
import urllib.parse
from typing import Callable

MASK = "***"
_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_URL_NAME = re.compile(r"(_BASE_URL|_ENDPOINT|_API_BASE)$", re.IGNORECASE)
_LONG = 8             # masked even inside words from this length on
_SHORTEST = 3         # shorter values are placeholders, not secrets
_SHAPES = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;}]+"), rf"\1 {MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), f"sk-{MASK}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,15}://)[^/\s@?#\"']{1,256}@"), rf"\1{MASK}@"),
    (re.compile(r"(?i)([?&;](?:api[-_]?key|key|token|access_token|sig|signature|password|secret|code)=)"
                r"[^&\s#\"']+"), rf"\1{MASK}"),
)
_remembered: set[str] = set()


def url_secrets(url: str | None) -> set[str]:
    """The user, password and query values of ``url`` (raw and percent-decoded)."""
    if not url:
        return set()
    try:
        parts = urllib.parse.urlsplit(str(url))
        found = {parts.username or "", parts.password or ""}
        found |= {value for _, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)}
    except ValueError:
        return set()
    return {form for value in found if value
            for form in (value, urllib.parse.unquote(value), urllib.parse.quote(value, safe=""))}


def remember_url(url: str | None) -> None:
    """Mask the credentials of a URL given outside the environment (a flag, a judge.yaml)."""
    _remembered.update(url_secrets(url))


def public_url(url: str | None) -> str:
    """``scheme://host[:port]/path`` of ``url``: what may be recorded, never userinfo or query."""
    if not url:
        return ""
    try:
        parts = urllib.parse.urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    return urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def credentials() -> set[str]:
    """Every credential value in play now."""
    found = set(_remembered)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and value:
            found.add(value)
        elif _URL_NAME.search(name):
            found |= url_secrets(value)
    return found


def redactor() -> Callable[[object], str]:
    """:func:`redact` bound to the credentials in play now: for a hot path (a judge backend takes
    one per batch, as reading the environment for every answer cost ~0.1 ms of CPU)."""
    values = sorted((v for v in credentials() if len(v) >= _SHORTEST), key=len, reverse=True)
    long = [value for value in values if len(value) >= _LONG]
    short = [re.escape(value) for value in values if len(value) < _LONG]
    alone = re.compile(rf"(?<![A-Za-z0-9])(?:{'|'.join(short)})(?![A-Za-z0-9])") if short else None

    def mask(text: object) -> str:
        text = str(text)
        for value in long:
            text = text.replace(value, MASK)
        if alone is not None:
            text = alone.sub(MASK, text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text
    return mask


def redact(text: object) -> str:
    """``text`` with every credential in play and every key-shaped token masked.

    Apply it to any text before it is cut, printed, logged or written anywhere."""
    return redactor()(text)
