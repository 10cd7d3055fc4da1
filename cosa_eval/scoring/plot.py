"""``leaderboard.png``: one row of panels per benchmark, so figures from different judges and
benchmarks (CoSApien's human evaluation, CoSAlign-Test's GPT-4o judge) never share an axis.

Each row: helpful+safe against helpful+unsafe on fixed 0-100% axes (points numbered, not
labelled, so labels cannot pile up), CoSA-Score bars with their 95% CIs (labels wrapped, numbered
to match), and, when the results folder has a notice, the per-response rating distribution.
"""
from __future__ import annotations

import textwrap
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from .coverage import marks
from .notice import is_degenerate

if TYPE_CHECKING:
    from .render import Board, Row

# benchmark -> (score columns with their legend names, (helpful+safe, helpful+unsafe) columns, what the cells cover)
SCORES = {"cosalign_test": ((("cosa_score", "all 8 configs"), ("seen_cosa_score", "seen configs"),
                             ("unseen_cosa_score", "unseen configs")),
                            ("seen_helpful_safe", "seen_helpful_unsafe"), "seen configs")}
DEFAULT_SCORES = ((("cosa_score", "CoSA-Score"),), ("helpful_safe", "helpful_unsafe"), "all configs")
COLORS = ("#2f6fde", "#e8912d", "#3a9a5b")
LABEL_WIDTH = 34


def _value(row: Row, column: str) -> float | None:
    return float(row[column]) if row.get(column) else None


def _label(number: int, row: Row) -> str:
    extra = f", {row['scoring'].replace('_', '-')}" if row["scoring"] != "standard" else ""
    source = "paper" if row["source"] == "reported" else row["judge"]
    return textwrap.fill(f"[{number}] {row['model']} ({row['variant']}{extra}; {source}){marks(row, short=True)}",
                         LABEL_WIDTH)


def _judges(rows: list[Row]) -> str:
    kinds = []
    for source, name in (("measured", "measured, judge"), ("reported", "reported by the paper, judge")):
        judges = sorted({r["judge"].replace(" (paper)", "") for r in rows if r["source"] == source})
        if judges:
            kinds.append(f"{name} {', '.join(judges)}")
    return "; ".join(kinds)


def _limit(values: list[float]) -> float:
    """An axis end: the largest value plus room for its label, in steps of 10, at least 20%."""
    return min(105.0, max(20.0, 10 * (int(max(values, default=0) / 10) + 1) + 5))


def _place_labels(axis: Any, points: dict[tuple[float, float], list[int]]) -> None:
    """Number each point, moving a label to another side of its point when it would cover one
    already placed (labels are boxes in display space)."""
    figure = axis.figure
    placed: list[Any] = []
    offsets = ((4, 3), (4, -10), (-14, 3), (-14, -10), (4, 12), (-14, 12))
    renderer = figure.canvas.get_renderer()
    for (x, y), labels in sorted(points.items(), key=lambda item: (-item[0][1], item[0][0])):
        for dx, dy in offsets:
            text = axis.annotate(",".join(map(str, labels)), (x, y), fontsize=7.5, xytext=(dx, dy),
                                 textcoords="offset points")
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed) or (dx, dy) == offsets[-1]:
                placed.append(box)
                break
            text.remove()


def _scatter(axis: Any, rows: list[Row], numbers: dict[int, int], cells: tuple[str, str],
             covers: str) -> dict[tuple[float, float], list[int]]:
    """Plot the points; returns them (position -> row numbers) for labelling once the layout is done."""
    safe, unsafe = cells
    points: dict[tuple[float, float], list[int]] = {}
    for index, row in enumerate(rows):
        x, y = _value(row, unsafe), _value(row, safe)
        if x is None or y is None:
            continue
        measured = row["source"] == "measured"
        axis.scatter(100 * x, 100 * y, s=36, marker="o" if measured else "s", zorder=3,
                     facecolors=COLORS[0] if measured else "none", edgecolors=COLORS[0] if measured else "gray")
        points.setdefault((round(100 * x, 1), round(100 * y, 1)), []).append(numbers[index])
    axis.set(xlim=(-1, _limit([x for x, _ in points])), ylim=(-1, _limit([y for _, y in points])),
             xlabel=f"helpful + unsafe, % of {covers}\n(lower is better)",
             ylabel=f"helpful + safe, % of {covers}  (higher is better)", title="Helpful+safe vs helpful+unsafe")
    axis.set_box_aspect(1)
    axis.set_anchor("N")
    axis.grid(alpha=0.3)
    if not points:
        axis.text(0.5, 0.5, "no helpful+safe / helpful+unsafe figures", ha="center", va="center", fontsize=9,
                  transform=axis.transAxes)
    return points


def _bars(axis: Any, rows: list[Row], numbers: dict[int, int], scores: tuple[tuple[str, str], ...]) -> None:
    import matplotlib.patches as patches

    shown = [i for i, row in enumerate(rows) if any(_value(row, column) is not None for column, _ in scores)]
    used = [(column, name) for column, name in scores if any(_value(rows[i], column) is not None for i in shown)]
    if not shown:
        axis.text(0.5, 0.5, "no CoSA-Score figures", ha="center", va="center", transform=axis.transAxes)
        axis.set_axis_off()
        return
    height = 0.8 / len(used)
    lows, highs = [0.0], [1.0]
    for slot, (column, name) in enumerate(used):
        color = COLORS[slot % len(COLORS)]
        for position, index in enumerate(reversed(shown)):
            row, value = rows[index], _value(rows[index], column)
            if value is None:
                continue
            y = position + 0.4 - height * (slot + 0.5)
            reported = row["source"] == "reported"
            axis.barh(y, value, height=height * 0.92, color=color, alpha=0.45 if reported else 1.0,
                      hatch="///" if reported else None, edgecolor="white" if reported else color)
            low, high = _value(row, f"{column}_ci_low"), _value(row, f"{column}_ci_high")
            if low is not None and high is not None:
                axis.errorbar(value, y, xerr=[[max(value - low, 0)], [max(high - value, 0)]], fmt="none",
                              ecolor="black", capsize=2.5, linewidth=0.9)
                lows.append(low)
                highs.append(high)
            lows.append(value)
            highs.append(value)
    axis.set_yticks(range(len(shown)), [_label(numbers[i], rows[i]) for i in reversed(shown)], fontsize=7.5)
    axis.set_ylim(-0.6, len(shown) - 0.4)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set(xlabel="CoSA-Score (−1 to 1; bars: 95% bootstrap CI where measured)",
             xlim=(min(-0.1, *lows) - 0.05, max(1.0, *highs) + 0.02))
    handles = [patches.Patch(color=COLORS[s % len(COLORS)], label=name) for s, (_, name) in enumerate(used)]
    if any(rows[i]["source"] == "reported" for i in shown):
        handles.append(patches.Patch(facecolor="lightgray", hatch="///", edgecolor="white",
                                     label="hatched: reported by the paper"))
    axis.legend(handles=handles, fontsize=7.5, loc="lower right", bbox_to_anchor=(1, 1), ncol=len(handles),
                frameon=False, handlelength=1.5, columnspacing=1)
    axis.grid(axis="x", alpha=0.3)


def _ratings(axis: Any, ratings: list[float]) -> None:
    axis.set_box_aspect(0.9)
    axis.set_anchor("N")
    axis.hist(ratings, bins=[i / 10 for i in range(51)], color=COLORS[0])
    axis.set(xlim=(0, 5), xlabel="helpfulness rating (0-5)", ylabel="responses",
             title=f"Per-response ratings (n={len(ratings)})")
    axis.yaxis.get_major_locator().set_params(integer=True)
    if is_degenerate(ratings):
        right = sum(ratings) / len(ratings) < 2.5
        spread = max(ratings) - min(ratings)
        axis.text(0.97 if right else 0.03, 0.97, f"all within {spread:.2f}:\nthe judge does not\ntell answers apart",
                  transform=axis.transAxes, ha="right" if right else "left", va="top", color="#b42318",
                  fontsize=8.5, weight="bold")
    axis.grid(alpha=0.3)


@contextmanager
def _plain_text() -> Iterator[None]:
    """Names are text: no mathtext (``$...$``), no TeX; a character the font lacks is drawn as a box
    without a warning on stderr (the markdown and HTML views show it)."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        yield


def render_plot(board: Board, path: Any) -> None:
    """Write the PNG."""
    import matplotlib.pyplot as plt

    with _plain_text():
        fig = build_figure(board)
        try:
            fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)


def build_figure(board: Board) -> Any:
    """The laid-out matplotlib figure (Agg backend), labels placed."""
    import matplotlib

    matplotlib.use("Agg")
    with _plain_text():
        return _figure(board)


def _figure(board: Board) -> Any:
    import matplotlib.pyplot as plt

    benchmarks = board.benchmarks()
    with_ratings = any(board.ratings(b) for b in benchmarks)
    heights = [max(4.2, 0.42 * len(board.rows_of(b)) + 1.8) for b in benchmarks] or [4.2]
    widths = [1.0, 1.5, 0.8] if with_ratings else [1.0, 1.5]
    top = 1.2 if board.notice else 0.5
    height = sum(heights) + top + 0.8 * len(heights)
    fig = plt.figure(figsize=(15 if with_ratings else 13, height))
    grid = fig.add_gridspec(max(len(benchmarks), 1), len(widths), height_ratios=heights, width_ratios=widths,
                            wspace=0.55, hspace=0.3, top=1 - (top + 0.4) / height, bottom=0.5 / height)
    if board.notice:
        fig.suptitle(textwrap.fill(board.notice.warning, 150), color="#b42318", fontsize=10.5, weight="bold")
    scatters = []
    for line, benchmark in enumerate(benchmarks):
        rows = board.rows_of(benchmark)
        scores, cells, covers = SCORES.get(benchmark, DEFAULT_SCORES)
        numbers = {index: index + 1 for index in range(len(rows))}
        left = fig.add_subplot(grid[line, 0])
        scatters.append((left, _scatter(left, rows, numbers, cells, covers)))
        _bars(fig.add_subplot(grid[line, 1]), rows, numbers, scores)
        if with_ratings:
            axis = fig.add_subplot(grid[line, 2])
            _ratings(axis, board.ratings(benchmark)) if board.ratings(benchmark) else axis.set_axis_off()
        left.text(0, 1.13, textwrap.fill(f"{board.title(benchmark)}  ({_judges(rows)})", 170),
                  transform=left.transAxes, fontsize=10.5, weight="bold", va="bottom")
    fig.draw_without_rendering()                     # the final layout, so label boxes are where they will be
    for axis, points in scatters:
        _place_labels(axis, points)
    if not benchmarks:
        fig.text(0.5, 0.5, "no rows yet: add runs with cosa-eval leaderboard add RUN", ha="center")
    return fig
