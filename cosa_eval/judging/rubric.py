"""Rubric templates: jinja2 with StrictUndefined, versioned by a short content hash."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CosaError
from ..taxonomy import DEFINITIONS

HASH_CHARS = 12
# What a judged text could use to fake a verdict or the end of the quoted material.
_DELIMITERS = re.compile(r"\[\[|\]\]|<<<|>>>")
_REPLACEMENTS = {"[[": "[ [", "]]": "] ]", "<<<": "< < <", ">>>": "> > >"}


def neutralise(text: Any) -> str:
    """Break verdict brackets and quote markers inside judged text so it cannot inject a verdict."""
    return _DELIMITERS.sub(lambda match: _REPLACEMENTS[match.group(0)], str(text))


def content_hash(text: str) -> str:
    """Short sha256 of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def fixed_context(name: str) -> dict[str, Any]:
    """Variables every render of a rubric gets (the category definitions for ``categories``)."""
    return {"categories": list(DEFINITIONS.items())} if name == "categories" else {}


@dataclass(frozen=True)
class Rubric:
    """One rubric template, its source file and its version hash."""

    name: str
    path: Path
    text: str
    hash: str

    def render(self, **variables: Any) -> str:
        """The judge prompt; a missing variable raises ``CosaError`` naming the template."""
        import jinja2
        try:
            return _template(self.text).render(**fixed_context(self.name), **variables).strip() + "\n"
        except jinja2.UndefinedError as exc:
            raise CosaError(f"{self.path}: {exc.message}; rubric {self.name!r} may use "
                            f"{', '.join(sorted(variables) + sorted(fixed_context(self.name)))}") from None


@lru_cache(maxsize=32)
def _template(text: str) -> Any:
    import jinja2
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["neutralise"] = neutralise
    return env.from_string(text)


def load_rubric(name: str, path: Path) -> Rubric:
    """Read and compile a rubric; its hash covers the template text and its fixed context."""
    import jinja2
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CosaError(f"rubric {name!r}: cannot read {path} ({exc.strerror})") from None
    try:
        _template(text)
    except jinja2.TemplateSyntaxError as exc:
        raise CosaError(f"{path}: line {exc.lineno}: jinja syntax error ({exc.message})") from None
    versioned = text + json.dumps(fixed_context(name), sort_keys=True)
    return Rubric(name=name, path=path, text=text, hash=content_hash(versioned))
