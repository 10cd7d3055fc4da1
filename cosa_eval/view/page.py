"""The explorer's HTML: the data as one inert JSON block, the script and style inline, nothing
fetched. A Content-Security-Policy lets only this script run (by its hash) and blocks every
network request, so even a response carrying markup could not run code or call out."""
from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import Any

_ASSETS = Path(__file__).parent
# JSON is valid inside <script> once nothing in it can close the element or start markup; U+2028/9
# are escaped too so the text stays valid JavaScript wherever it is pasted.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                   0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(data: Any) -> str:
    """``data`` as JSON safe to embed in ``<script type="application/json">``."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_page(data: dict[str, Any]) -> str:
    """The whole page for the explorer data (``data.build``)."""
    script = (_ASSETS / "explorer.js").read_text(encoding="utf-8")
    style = (_ASSETS / "explorer.css").read_text(encoding="utf-8")
    policy = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
              "img-src data:; base-uri 'none'; form-action 'none'")
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(str(data.get('title', 'cosa-eval explorer')))}</title>\n"
        f"<style>{style}</style>\n</head>\n<body>\n"
        "<noscript>The explorer needs JavaScript; the data is in the JSON block of this file.</noscript>\n"
        f"<script type=\"application/json\" id=\"cosa-data\">{script_json(data)}</script>\n"
        f"<script>{script}</script>\n</body>\n</html>\n")
