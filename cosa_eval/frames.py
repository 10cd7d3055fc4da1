"""Results as pandas DataFrames, for notebooks (pandas is imported only when these are called).

    import cosa_eval
    judged = cosa_eval.read_judged("out/my-model/judged")       # one row per response and judge
    board = cosa_eval.read_leaderboard("results")              # measured rows and the paper's
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import CosaError

if TYPE_CHECKING:
    import pandas

BOOLEAN_COLUMNS = ("fully_allowed", "is_compliant", "is_safe", "is_helpful")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise CosaError("reading results as DataFrames needs pandas; pip install pandas") from None
    return pandas


def _response_row(source: Any, record: Any) -> dict[str, Any]:
    from .view.sources import kind_of, outcome
    sample = record.sample
    attempts = record.extra.get("attempts") or {}
    return {
        "run": source.run, "model": source.model, "judge": source.judge, "parser": source.parser,
        "folder": str(source.folder), "sample_id": sample.sample_id, "benchmark": sample.benchmark,
        "variant": sample.variant, "task": sample.task, "config_id": sample.config_id,
        "config_group": sample.config_group, "doc_id": sample.doc_id, "kind": kind_of(record),
        "mode": sample.mode, "situation": sample.situation, "prompt_type": sample.prompt_type,
        "fully_allowed": sample.is_fully_allowed, "prompt": sample.prompt, "response": sample.response,
        "config": sample.config, "allowed_categories": list(sample.allowed_categories),
        "rating": record.rating, "is_compliant": record.is_compliant,
        "categories": None if record.categories is None else [c for c, present in record.categories.items() if present],
        "violated_categories": list(record.violated_categories), "is_safe": record.is_safe,
        "is_helpful": record.is_helpful, "outcome": outcome(record), "h": record.h, "s": record.s,
        "failure": record.failure, "failure_detail": record.failure_detail,
        "attempts": max(attempts.values(), default=None),
        "parsers_disagree": list(record.extra.get("parsers_disagree") or []),
    }


def read_judged(paths: str | Path | Iterable[str | Path]) -> "pandas.DataFrame":
    """Every judged response under ``paths`` (judged folders or files): one row per response and
    judge run, with the sample's fields, the verdicts, the outcome (helpful+safe, helpful+unsafe,
    refused, over-refusal, invalid), the failure and the attempts its questions took."""
    from .view.sources import load_sources
    pd = _pandas()
    given = [paths] if isinstance(paths, (str, Path)) else list(paths)
    rows = [_response_row(source, record) for source in load_sources(given) for record in source.records]
    frame = pd.DataFrame.from_records(rows)
    frame["rating"] = frame["rating"].astype("float64")
    frame["situation"] = frame["situation"].astype("Int64")
    frame["attempts"] = frame["attempts"].astype("Int64")
    frame["s"] = frame["s"].astype("Int64")
    for column in BOOLEAN_COLUMNS:
        frame[column] = frame[column].astype("boolean")
    return frame


def read_leaderboard(results: str | Path | None = None, *, by_config: bool = False,
                     paper: bool = True) -> "pandas.DataFrame":
    """The leaderboard rows of a results folder (default: where ``cosa-eval leaderboard`` writes),
    checked as the leaderboard checks them, numbers typed, empty cells missing; the CoSA paper's
    reported rows follow unless ``paper=False``. ``by_config=True`` gives the per-config rows."""
    from .scoring import tables
    pd = _pandas()
    folder = Path(results) if results is not None else tables.default_results_dir()
    if not folder.is_dir():
        raise CosaError(f"results folder {folder} does not exist; give the folder 'cosa-eval leaderboard add "
                        "--results DIR' wrote")
    name, columns, key = ((tables.BY_CONFIG, tables.BY_CONFIG_COLUMNS, tables.BY_CONFIG_KEY) if by_config
                          else (tables.LEADERBOARD, tables.LEADERBOARD_COLUMNS, tables.KEY))
    rows = tables.read_table(folder / name, columns, key)
    if paper and not by_config:
        rows += tables.read_paper()
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    for column in columns:
        if column in tables.TEXT_COLUMNS:
            continue
        numbers = pd.to_numeric(frame[column].replace("", None))
        frame[column] = numbers.astype("Int64") if column in tables.INT_COLUMNS else numbers.astype("float64")
    return frame
