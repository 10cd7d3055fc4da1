"""``cosa-eval view``: one self-contained HTML explorer of judged runs.

    cosa-eval view out/my-model/judged
    cosa-eval view judged/gpt-4o judged/llama-70b --out explorer.html
    cosa-eval view judged/final judged/reference --cache ~/.cache/cosa-eval/judge_cache.sqlite

Each OUT is a judged folder (``cosa-eval judge --output``), a folder holding several, or judged
files; runs, judges and parsers over the same samples meet on the same rows.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import CosaError

DEFAULT_OUT = "cosa_explorer.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosa-eval view``."""
    parser.add_argument("out", nargs="+", metavar="OUT",
                        help="judged folders (cosa-eval judge --output) or judged_*.jsonl files")
    parser.add_argument("--out", dest="page", type=Path, metavar="FILE.html",
                        help=f"where the page goes (default: {DEFAULT_OUT} in the first OUT folder)")
    parser.add_argument("--cache", type=Path, metavar="PATH",
                        help="judge cache holding the judges' texts (default: $COSA_CACHE_DIR/judge_cache.sqlite, "
                             "else ~/.cache/cosa-eval/judge_cache.sqlite)")
    parser.add_argument("--title", help="page title (default: the OUT paths)")


def write_explorer(paths: list[str | Path], page: Path | None = None, *, cache: Path | None = None,
                   title: str | None = None) -> Path:
    """Read the judged runs and their cached judge texts, write the page; returns its path."""
    from ..judging.cache import default_cache_path
    from .data import build
    from .page import render_page
    from .rationale import read_all_texts
    from .sources import load_sources
    sources = load_sources(paths)
    texts = read_all_texts(sources, Path(cache) if cache else default_cache_path())
    first = Path(paths[0])
    page = page or (first if first.is_dir() else first.parent) / DEFAULT_OUT
    if page.is_dir():
        raise CosaError(f"--out {page} is a folder; give a file name such as {page / DEFAULT_OUT}")
    data = build(sources, texts, title or "cosa-eval explorer: " + ", ".join(map(str, paths)))
    tmp = page.with_name(page.name + ".tmp")
    try:
        page.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(render_page(data), encoding="utf-8")
        tmp.replace(page)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CosaError(f"--out {page}: cannot write it ({exc.strerror or exc}); choose a writable path") from None
    for source in sources:
        for note in source.notes:
            print(f"cosa-eval: {source.label} ({source.folder}): {note}", file=sys.stderr)
    return page


def main(args: argparse.Namespace) -> int:
    """Write the explorer and print its path."""
    page = write_explorer(args.out, args.page, cache=args.cache, title=args.title)
    print(page)
    return 0
