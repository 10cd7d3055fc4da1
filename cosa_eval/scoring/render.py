"""``results/`` CSVs -> ``leaderboard.md``, a static ``leaderboard.html`` and ``leaderboard.png`` (plot.py).

The HTML page is one self-contained file (inline CSS and JS, no network asset): click a header to
sort, click a row to show its per-config figures. Output is deterministic (no timestamps), so a
re-render of unchanged CSVs changes no byte.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Callable

from ..atomic import replacing
from . import tables
from .coverage import marks
from .html_assets import PAGE_SCRIPT, PAGE_STYLE
from .notice import RATINGS, Notice, histogram, rating_summary, read_notice

Row = dict[str, str]
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>&|~$]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Column:
    """A rendered column: header, how to show a row's value, and the raw value to sort on."""

    title: str
    show: Callable[[Row], str]
    sort: Callable[[Row], str]
    numeric: bool = True


def _num(value: str, digits: int = 3) -> str:
    return f"{float(value):.{digits}f}" if value else "–"


def _pct(value: str) -> str:
    return f"{100 * float(value):.1f}%" if value else "–"


def _score_ci(row: Row, prefix: str = "cosa_score") -> str:
    low, high = row.get(f"{prefix}_ci_low", ""), row.get(f"{prefix}_ci_high", "")
    text = _num(row.get(prefix, ""))
    return f"{text} [{_num(low)}, {_num(high)}]" if row.get(prefix) and low and high else text


def _raw(name: str) -> Callable[[Row], str]:
    return lambda row: row.get(name, "")


def _col(title: str, name: str, show: Callable[[str], str] = _num) -> Column:
    return Column(title, lambda row: show(row.get(name, "")), _raw(name))


_IDENTITY = (
    Column("Model", lambda r: r["model"] + marks(r), _raw("model"), numeric=False),
    Column("Variant", lambda r: r["variant"], _raw("variant"), numeric=False),
    Column("Judge", lambda r: r["judge"], _raw("judge"), numeric=False),
    Column("Scoring", lambda r: r["scoring"].replace("_", "-"), _raw("scoring"), numeric=False),
    Column("Source", lambda r: r["source"] + (f" ({r['reference']})" if r.get("reference") else ""),
           _raw("source"), numeric=False),
    _col("n", "n", lambda v: v or "–"),
    _col("Valid", "valid_rate", _pct),
    Column("CoSA-Score [95% CI]", _score_ci, _raw("cosa_score")),
)
# cosalign_test also gets the paper's Table 3 columns: seen and unseen score, H+S and H+U.
_GROUPS = tuple(column for group in ("seen", "unseen") for column in (
    Column(group.capitalize(), lambda r, g=group: _score_ci(r, f"{g}_cosa_score"), _raw(f"{group}_cosa_score")),
    _col(f"{group.capitalize()} H+S", f"{group}_helpful_safe", _pct),
    _col(f"{group.capitalize()} H+U", f"{group}_helpful_unsafe", _pct),
))
_RATES = (
    _col("Helpful+safe", "helpful_safe", _pct),
    _col("Helpful+unsafe", "helpful_unsafe", _pct),
    _col("Helpful", "helpful_rate", _pct),
    _col("Safe", "safe_rate", _pct),
    _col("Over-refusal", "over_refusal", _pct),
)
BOARD_COLUMNS = {"cosalign_test": (*_IDENTITY, *_GROUPS, *_RATES), "cosapien": (*_IDENTITY, *_RATES)}
CONFIG_COLUMNS = (
    Column("Config", lambda r: r["config_id"], _raw("config_id"), numeric=False),
    Column("Group", lambda r: r["config_group"], _raw("config_group"), numeric=False),
    _col("n", "n", lambda v: v or "–"),
    _col("Valid", "valid_rate", _pct),
    Column("CoSA-Score [95% CI]", _score_ci, _raw("cosa_score")),
    *(_col(name.replace("_", "+").capitalize(), name, _pct) for name in tables.CELLS),
    _col("Helpful", "helpful_rate", _pct),
    _col("Safe", "safe_rate", _pct),
    _col("Over-refusal", "over_refusal", _pct),
    Column("Failures", lambda r: r["failures"] or "none", _raw("failures"), numeric=False),
    Column("Violations", lambda r: r["violations"] or "none", _raw("violations"), numeric=False),
)
BENCHMARK_TITLES = {"cosalign_test": "CoSAlign-Test (synthetic, 8 configs)",
                    "cosapien": "CoSApien (human-authored, 5 configs)",
                    "cosapien_demo": "cosapien_demo: the project's invented sample in the CoSApien schema, "
                                     "not CoSApien"}
NOTE = ("CoSA-Score = mean of h·s per config over validly judged responses, then the unweighted mean "
        "over configs; 95% CIs are seeded percentile bootstraps. Reported rows are the CoSA paper's "
        "figures (GPT-4o judge; human evaluation for CoSApien), not measured here.")


@dataclass
class Board:
    """Everything rendered: leaderboard rows (measured, then reported) and per-config rows by key."""

    rows: list[Row]
    configs: dict[tuple[str, ...], list[Row]]
    notice: Notice | None = None

    def benchmarks(self) -> list[str]:
        """Known benchmarks in their order, then any other declared benchmark by name."""
        present = {row["benchmark"] for row in self.rows}
        return [b for b in BENCHMARK_TITLES if b in present] + sorted(present - set(BENCHMARK_TITLES))

    def title(self, benchmark: str) -> str:
        """The section title; with a notice, what its measured rows were really run on."""
        title = BENCHMARK_TITLES.get(benchmark, benchmark)
        sample = self.notice.samples.get(benchmark) if self.notice else None
        return f"{benchmark}: {sample}" if sample else title

    def ratings(self, benchmark: str) -> list[float]:
        return self.notice.ratings.get(benchmark, []) if self.notice else []

    def rows_of(self, benchmark: str) -> list[Row]:
        return [row for row in self.rows if row["benchmark"] == benchmark]

    def configs_of(self, row: Row) -> list[Row]:
        return self.configs.get(tuple(row[k] for k in tables.KEY), [])


def load_board(results_dir: str | Path) -> Board:
    """Read and check the three CSVs; measured rows best-first, then reported rows in paper order."""
    results = Path(results_dir)
    measured = tables.read_table(results / tables.LEADERBOARD, tables.LEADERBOARD_COLUMNS, tables.KEY)
    reported = tables.read_paper()
    by_config = tables.read_table(results / tables.BY_CONFIG, tables.BY_CONFIG_COLUMNS, tables.BY_CONFIG_KEY)
    measured.sort(key=lambda row: -float(row["cosa_score"] or "-inf"))
    configs: dict[tuple[str, ...], list[Row]] = {}
    for row in by_config:
        configs.setdefault(tuple(row[k] for k in tables.KEY), []).append(row)
    return Board(measured + reported, configs, read_notice(results))


def columns_of(benchmark: str) -> tuple[Column, ...]:
    return BOARD_COLUMNS.get(benchmark, BOARD_COLUMNS["cosapien"])


def markdown_text(text: str) -> str:
    """``text`` as a markdown table cell shows it: markup characters backslash-escaped (no HTML, link,
    emphasis, code or math), ``|`` escaped and each line break a space, so the row stays one row."""
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", _LINE_BREAK.sub(" ", text))


def render_markdown(board: Board) -> str:
    """GitHub-flavoured markdown: one table per benchmark."""
    lines = ["# CoSA leaderboard", ""]
    if board.notice:
        lines += [f"> **{markdown_text(board.notice.warning)}**", ""]
    lines += [NOTE, ""]
    for benchmark in board.benchmarks():
        columns = columns_of(benchmark)
        lines += [f"## {markdown_text(board.title(benchmark))}", "",
                  "| " + " | ".join(c.title for c in columns) + " |",
                  "|" + "|".join("---" if not c.numeric else "---:" for c in columns) + "|"]
        for row in board.rows_of(benchmark):
            cells = (c.show(row) if c.numeric else markdown_text(c.show(row)) for c in columns)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if board.ratings(benchmark):
            lines += [f"Per-response helpfulness ratings (rounded): {rating_summary(board.ratings(benchmark))}", ""]
    if not board.rows:
        lines.append("No rows yet: add runs with `cosa-eval leaderboard add RUN`.")
    return "\n".join(lines).rstrip() + "\n"


def _cells(row: Row, columns: tuple[Column, ...], tag: str = "td") -> str:
    return "".join(f'<{tag} data-v="{escape(c.sort(row))}">{escape(c.show(row))}</{tag}>' for c in columns)


def _detail(board: Board, row: Row) -> str:
    configs = board.configs_of(row)
    if row["source"] == "reported" or not configs:
        ref = escape(row.get("reference") or "")
        return f"<p>Reported by the CoSA paper ({ref}); per-config figures are not published.</p>"
    head = "".join(f"<th>{escape(c.title)}</th>" for c in CONFIG_COLUMNS)
    body = "".join(f"<tr>{_cells(c, CONFIG_COLUMNS)}</tr>" for c in configs)
    hashes = escape(row.get("rubric_hashes") or "–")
    return (f'<table class="configs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            f'<p class="meta">rubrics {hashes} · lm_eval {escape(row["lm_eval_version"] or "–")} · '
            f'cosa-eval {escape(row["cosa_eval_version"] or "–")} · {escape(row["date"] or "–")} · '
            f'{escape(row["model_args"] or "no model_args")}</p>')


def _board_table(board: Board, benchmark: str, start: int) -> str:
    columns = columns_of(benchmark)
    heads = "".join(f'<th data-type="{"num" if c.numeric else "text"}" tabindex="0">{escape(c.title)}</th>'
                    for c in columns)
    body = []
    for number, row in enumerate(board.rows_of(benchmark), start):
        body.append(f'<tr class="run {escape(row["source"])}" id="run-{number}" tabindex="0" '
                    f'aria-expanded="false">{_cells(row, columns)}</tr>'
                    f'<tr class="detail" id="detail-{number}" hidden><td colspan="{len(columns)}">'
                    f'{_detail(board, row)}</td></tr>')
    return (f'<div class="scroll"><table class="board" id="board-{escape(benchmark)}"><thead><tr>{heads}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div>')


def render_html(board: Board) -> str:
    """One static page: inline CSS and JS, sortable tables, per-config drill-down."""
    sections, start = [], 0
    for benchmark in board.benchmarks():
        sections.append(f"<section><h2>{escape(board.title(benchmark))}</h2>"
                        f"{_board_table(board, benchmark, start)}{_ratings_html(board.ratings(benchmark))}</section>")
        start += len(board.rows_of(benchmark))
    banner = f'<p class="warning" role="alert">{escape(board.notice.warning)}</p>' if board.notice else ""
    if not board.rows:
        sections.append("<p>No rows yet: add runs with <code>cosa-eval leaderboard add RUN</code>.</p>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\"><title>CoSA leaderboard</title>"
            f"<style>{PAGE_STYLE}</style></head>\n<body><h1>CoSA leaderboard</h1>{banner}"
            f"<p class=\"note\">{escape(NOTE)} Click a column header to sort; click a row for its "
            f"per-config figures.</p>\n{''.join(sections)}\n<script>{PAGE_SCRIPT}</script></body></html>\n")


def _ratings_html(ratings: list[float]) -> str:
    """The per-response rating distribution as a small bar chart (one bar per rounded rating)."""
    if not ratings:
        return ""
    counts = histogram(ratings)
    bars = "".join(f'<div class="bin" title="{n} responses rated {r}"><span class="count">{n}</span>'
                   f'<span class="bar" style="height:{round(60 * n / max(counts))}px"></span>'
                   f'<span class="label">{r}</span></div>' for r, n in zip(RATINGS, counts))
    return (f'<figure class="ratings"><figcaption>Per-response helpfulness ratings (rounded to 0-5): '
            f'{escape(rating_summary(ratings))}</figcaption><div class="bins">{bars}</div></figure>')


def render(results_dir: str | Path = "results", out_dir: str | Path | None = None) -> list[Path]:
    """Write leaderboard.md, .html and .png for the CSVs in ``results_dir`` (all three or none);
    returns their paths."""
    from .plot import render_plot

    results = Path(results_dir)
    with tables.results_lock(results, reading=True):
        board = load_board(results)
    out = Path(out_dir) if out_dir is not None else results
    paths = [out / "leaderboard.md", out / "leaderboard.html", out / "leaderboard.png"]
    with replacing(paths) as temps:
        temps[0].write_text(render_markdown(board), encoding="utf-8")
        temps[1].write_text(render_html(board), encoding="utf-8")
        render_plot(board, temps[2])
    return paths
