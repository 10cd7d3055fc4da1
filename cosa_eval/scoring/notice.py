"""A results folder's notice (``notice.json``): a banner that every rendered view shows, what each
benchmark's rows were measured on, and the per-response helpfulness ratings behind them.

The demo writes one, so its page, markdown and plot cannot be mistaken for a published result,
and a judge that gives every response the same rating is visible at a glance.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import write_texts
from ..errors import CosaError

NOTICE_FILE = "notice.json"
RATINGS = range(6)                                   # helpfulness 0-5
NARROW = 0.5                                         # all ratings within this: the judge does not discriminate


@dataclass(frozen=True)
class Notice:
    """Banner text, benchmark -> the sample its rows were measured on, benchmark -> ratings."""

    warning: str
    samples: dict[str, str] = field(default_factory=dict)
    ratings: dict[str, list[float]] = field(default_factory=dict)


def write_notice(results_dir: str | Path, notice: Notice) -> Path:
    path = Path(results_dir) / NOTICE_FILE
    write_texts({path: json.dumps(asdict(notice), indent=2, ensure_ascii=False) + "\n"})
    return path


def read_notice(results_dir: str | Path) -> Notice | None:
    """The folder's notice, or None when it has none."""
    path = Path(results_dir) / NOTICE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Notice(warning=str(data["warning"]), samples=dict(data.get("samples") or {}),
                      ratings={k: [float(v) for v in values] for k, values in (data.get("ratings") or {}).items()})
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CosaError(f"{path}: not a cosa-eval notice ({type(error).__name__}: {error}); "
                        "delete it or re-run 'cosa-eval demo'") from None


def histogram(ratings: list[float]) -> list[int]:
    """How many ratings round to each of 0..5."""
    counts = [0] * len(RATINGS)
    for rating in ratings:
        counts[min(max(int(rating + 0.5), 0), len(RATINGS) - 1)] += 1
    return counts


def is_degenerate(ratings: list[float]) -> bool:
    """All ratings (at least two) within ``NARROW`` of each other."""
    return len(ratings) > 1 and max(ratings) - min(ratings) < NARROW


def rating_summary(ratings: list[float]) -> str:
    """``n=24  0:0 1:0 2:24 3:0 4:0 5:0  min 1.58 max 1.66`` plus a warning when degenerate."""
    if not ratings:
        return "no ratings"
    counts = " ".join(f"{r}:{n}" for r, n in zip(RATINGS, histogram(ratings)))
    text = f"n={len(ratings)}  {counts}  min {min(ratings):.2f} max {max(ratings):.2f}"
    if is_degenerate(ratings):
        text += f"  - every rating within {max(ratings) - min(ratings):.2f}: this judge does not tell answers apart"
    return text
