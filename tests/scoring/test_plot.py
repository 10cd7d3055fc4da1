"""leaderboard.png through `cosa-eval leaderboard render`: one row of panels per benchmark, axes a
reader can read, and a demo's banner, sample names and rating distribution on the picture."""
from __future__ import annotations

from pathlib import Path

import pytest

from cosa_eval.scoring.notice import Notice, write_notice
from scoring_harness import leaderboard, results_with_runs

WARNING = "DEMO JUDGE: NOT comparable with published CoSA-Scores"
SAMPLE = "the project's own invented demo sample - not CoSApien"


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    return results_with_runs(tmp_path, "model-b-with-a-rather-long-name-that-would-squash-bars")


def _figure(results: Path):
    """The figure `cosa-eval leaderboard render` saves as leaderboard.png, laid out."""
    from cosa_eval.scoring.plot import build_figure
    from cosa_eval.scoring.render import load_board
    return build_figure(load_board(results))


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")) if t.get_text()]


def _overlaps(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def test_each_benchmark_gets_its_own_panels_with_sane_axes(results, tmp_path):
    fig = _figure(results)
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    titles = [t for t in texts if t.startswith(("CoSAlign-Test", "CoSApien"))]
    assert len(titles) == 2 and "judge gpt-4o" in titles[0] and "judge human" in titles[1]
    assert not any("gray" in t for t in texts)                  # no promise of bars that may not be drawn
    scatters = [a for a in fig.axes if a.get_title() == "Helpful+safe vs helpful+unsafe"]
    assert len(scatters) == 2                                   # human-eval and GPT-4o figures never share an axis
    for axis in scatters:
        (x0, x1), (y0, y1) = axis.get_xlim(), axis.get_ylim()
        assert -5 <= x0 <= 0 and 20 <= x1 <= 105 and -5 <= y0 <= 0 and 20 <= y1 <= 105
        numbers = [t for t in axis.texts if t.get_text()[:1].isdigit()]
        assert numbers and _overlaps([t.get_window_extent(renderer) for t in numbers]) == []
    bars = [a for a in fig.axes if a.get_yticklabels() and a not in scatters and a.get_legend()]
    assert len(bars) == 2
    for axis in bars:
        labels = axis.get_yticklabels()
        assert all(label.get_fontsize() >= 7 for label in labels)
        assert _overlaps([label.get_window_extent(renderer) for label in labels]) == []
        assert max(len(line) for label in labels for line in label.get_text().splitlines()) <= 40
        plot_width = axis.get_window_extent(renderer).width
        assert plot_width > 0.3 * fig.get_window_extent(renderer).width   # long names do not squash the bars
    legend = [t.get_text() for t in bars[1].get_legend().get_texts()]
    assert legend == ["CoSA-Score", "hatched: reported by the paper"]


def test_a_demo_notice_puts_warning_sample_and_ratings_on_the_plot(results, tmp_path):
    write_notice(results, Notice(warning=WARNING, samples={"cosapien": SAMPLE},
                                 ratings={"cosapien": [1.61, 1.6, 1.63, 1.62]}))
    assert leaderboard("render", "--results", results, "--out", tmp_path / "site") == 0
    assert (tmp_path / "site" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    fig = _figure(results)
    texts = _texts(fig)
    assert fig._suptitle is not None and WARNING in fig._suptitle.get_text().replace("\n", " ")
    assert any(SAMPLE in t.replace("\n", " ") for t in texts)
    histogram = next(a for a in fig.axes if a.get_title().startswith("Per-response ratings (n=4)"))
    assert histogram.get_xlim() == (0, 5)
    assert any("does not" in t.get_text() for t in histogram.texts)
