"""Views that are safe to open: a name is shown as the text it is, in markdown, HTML, the CSVs and the
PNG, and the CSVs read back exactly what was written."""
from __future__ import annotations

import csv
import html
import re
import shutil
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings, strategies as st
from markdown_it import MarkdownIt

from scoring_fixtures import run_b, write_run
from scoring_harness import REPO_RESULTS, leaderboard
from cosa_eval.scoring import tables

HOSTILE = ("<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "a|b", "line\nbreak", "cr\rlf\r\n",
           "=HYPERLINK(\"http://x\")", "+1+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "'quoted", "[x](javascript:1)",
           r"back\|slash\\", "*em* _u_ `code` ~~s~~ $x$", "&amp; &#60;")
# text as a CSV cell can hold it: Unicode scalar values (the file is UTF-8), NUL aside
NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


def _results(tmp_path: Path, names: tuple[str, ...]) -> Path:
    results = Path(shutil.copytree(REPO_RESULTS, tmp_path / "results"))
    for number, name in enumerate(names):
        run = write_run(tmp_path / f"run-{number}", run_b())
        assert leaderboard("add", "--allow-partial", run, f"--model={name}", "--results", results) == 0
    return results


def _tables(markdown: str) -> list[list[list[str]]]:
    """Each table's rows' cells as a GFM renderer shows them (text only)."""
    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(markdown)
    tables_, rows, row = [], [], None
    for token in tokens:
        if token.type == "table_open":
            rows = []
            tables_.append(rows)
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append("".join(child.content if child.type in ("text", "code_inline") else
                               "\n" if child.type == "softbreak" else f"<{child.type}>" for child in token.children))
        elif token.type == "tr_close":
            rows.append(row)
            row = None
    return tables_


def test_markdown_cells_show_names_as_text(tmp_path):
    results = _results(tmp_path, HOSTILE)
    assert leaderboard("render", "--results", results) == 0
    markdown = (results / "leaderboard.md").read_text(encoding="utf-8")
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    tables_ = _tables(markdown)
    assert all(len(row) == len(rows[0]) for rows in tables_ for row in rows)    # no row split by | or \n
    assert sum(len(rows) for rows in tables_) == 2 + len(tables.read_paper()) + len(HOSTILE)    # 2 headers
    models = [re.sub(r" \[partial: [^\]]*\]$", "", row[0]).strip() for rows in tables_ for row in rows]  # small runs
    for name in HOSTILE:                             # line breaks shown as spaces; a cell is trimmed
        assert " ".join(name.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip() in models, name


def test_html_escapes_every_name(tmp_path):
    results = _results(tmp_path, HOSTILE[:2])
    assert leaderboard("render", "--results", results) == 0
    page = (results / "leaderboard.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert html.escape(HOSTILE[0]) in page and html.escape(HOSTILE[1]) in page


def test_csv_cells_never_start_a_formula(tmp_path):
    results = _results(tmp_path, HOSTILE)
    with (results / tables.LEADERBOARD).open(encoding="utf-8", newline="") as handle:
        raw = [row["model"] for row in csv.DictReader(handle)]
    assert not [cell for cell in raw if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=HYPERLINK(\"http://x\")" in raw and "''quoted" in raw
    read = [row["model"] for row in tables.read_table(results / tables.LEADERBOARD, tables.LEADERBOARD_COLUMNS,
                                                      tables.KEY)]
    assert sorted(read) == sorted(HOSTILE)                            # the reader strips the prefix


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=5, unique=True), args=NAMES)
def test_csv_round_trip_is_exact(tmp_path_factory, names, args):
    """Any text written into a results CSV reads back identical."""
    folder = tmp_path_factory.mktemp("csv")
    path = folder / tables.LEADERBOARD
    row = next(r for r in tables.read_paper())
    rows = [{**row, "model": name, "model_args": args, "reference": name[::-1]} for name in names]
    tables.write_tables({path: (tables.LEADERBOARD_COLUMNS, rows)})
    read = tables.read_table(path, tables.LEADERBOARD_COLUMNS, tables.KEY)
    assert [(r["model"], r["model_args"], r["reference"]) for r in read] == \
        [(name, args, name[::-1]) for name in names]


@settings(max_examples=10, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=3, unique=True))
@example(names=["gpt$\\x$-mini", "$\\frac{1}{0}$", "a$b$c"])
def test_png_draws_any_name_as_plain_text(names):
    """Names reach the PNG as they are: no mathtext, no TeX."""
    import matplotlib.pyplot as plt

    from cosa_eval.scoring.plot import build_figure
    from cosa_eval.scoring.render import Board

    measured = next(r for r in tables.read_paper())
    board = Board([{**measured, "model": name, "judge": name, "source": "measured"} for name in names], {})
    figure = build_figure(board)
    try:
        figure.canvas.draw()
        labels = "".join("".join(t.get_text().split()) for axis in figure.axes for t in axis.get_yticklabels())
        assert all("".join(name.split()) in labels for name in names)
    finally:
        plt.close(figure)
