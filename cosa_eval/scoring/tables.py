"""The ``results/`` CSV schema: column lists, a validating reader, and an all-or-nothing writer.

The schema is documented for people in ``results/README.md``; keep the two in step. The tables are
``csv`` and lists of dicts, not pandas (``cosa_eval.frames`` gives DataFrames): an error names the
line a row ends on (a quoted cell may span lines), a row holding ``\r`` is quoted whole, and merging
and sorting on pandas was longer and cost its ~0.6 s import on every ``leaderboard add``.
"""
from __future__ import annotations

import csv
import errno
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..atomic import replacing
from ..errors import CosaError
from ..types import VARIANTS
from .metrics import CELLS

LEADERBOARD = "leaderboard.csv"
BY_CONFIG = "leaderboard_by_config.csv"
PAPER = "paper_reported.csv"
PAPER_PATH = Path(__file__).with_name(PAPER)   # packaged: every leaderboard shows the paper's rows
RESULTS_ENV = "COSA_RESULTS_DIR"

# One row is one (model, model_args, benchmark, variant, judge, scoring, parser); adding it again replaces it.
KEY = ("model", "model_args", "benchmark", "variant", "judge", "scoring", "parser")
LEADERBOARD_COLUMNS = (
    *KEY, "judge_endpoint", "judge_snapshot", "rubric_hashes", "lm_eval_version", "cosa_eval_version", "date",
    "n", "n_valid", "valid_rate", "failures",
    "cosa_score", "cosa_score_ci_low", "cosa_score_ci_high",
    "seen_cosa_score", "seen_cosa_score_ci_low", "seen_cosa_score_ci_high",
    "unseen_cosa_score", "unseen_cosa_score_ci_low", "unseen_cosa_score_ci_high",
    *CELLS,
    "seen_helpful_safe", "seen_helpful_unsafe", "unseen_helpful_safe", "unseen_helpful_unsafe",
    "helpful_rate", "safe_rate", "over_refusal",
    "bootstrap_resamples", "bootstrap_seed", "source", "reference", "partial", "judge_caveat",
)
BY_CONFIG_KEY = (*KEY, "config_id")
BY_CONFIG_COLUMNS = (
    *KEY, "config_id", "config_group", "n", "n_valid", "valid_rate", "failures",
    "cosa_score", "cosa_score_ci_low", "cosa_score_ci_high", *CELLS,
    "helpful_rate", "safe_rate", "n_fully_allowed", "over_refusal", "violations", "source",
)
INT_COLUMNS = frozenset({"n", "n_valid", "n_fully_allowed", "bootstrap_resamples", "bootstrap_seed"})
TEXT_COLUMNS = frozenset({*KEY, "judge_endpoint", "judge_snapshot", "rubric_hashes", "lm_eval_version",
                          "cosa_eval_version", "date", "failures", "source", "reference", "config_id",
                          "config_group", "violations", "partial", "judge_caveat"})
REQUIRED = frozenset({"model", "benchmark", "variant", "judge", "scoring", "source"})
# Measured rows must carry their denominator beside the score.
REQUIRED_MEASURED = frozenset({"n", "n_valid", "valid_rate", "cosa_score"})
CHOICES = {"variant": VARIANTS, "scoring": ("standard", "cascade_oracle"), "source": ("measured", "reported"),
           "parser": ("final", "reference")}
# Columns added after tables were first published: a file without them reads as these values.
ADDED_COLUMNS = {"parser": lambda row: "final" if row.get("source") == "measured" else "",
                 "judge_endpoint": lambda row: "", "judge_snapshot": lambda row: "", "partial": lambda row: "",
                 "judge_caveat": lambda row: ""}
_FIX = "fix the value, delete the row, or restore the file from git (git checkout -- FILE)"
# A text cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection): it is
# written behind a ``'``, and so is one starting with ``'``, so the reader strips exactly one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
LOCK_FILE = ".leaderboard.lock"
LOCK_TIMEOUT_S = 300


def default_results_dir() -> Path:
    """Where the leaderboard CSVs live: ``$COSA_RESULTS_DIR``, else ``$XDG_DATA_HOME/cosa-eval/results``
    (``~/.local/share/cosa-eval/results``); never the current folder."""
    configured = os.environ.get(RESULTS_ENV)
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "cosa-eval" / "results"


def read_paper() -> list[dict[str, str]]:
    """The CoSA paper's reported rows, shipped with the package."""
    return read_table(PAPER_PATH, LEADERBOARD_COLUMNS, KEY)


def format_value(value: Any) -> str:
    """CSV text of a value: floats to at most 6 decimals, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)


def pairs_text(pairs: dict[str, Any]) -> str:
    """``a=1;b=2`` (sorted by key): how dict-valued fields (hashes, failures, violations) are stored."""
    return ";".join(f"{k}={v}" for k, v in sorted(pairs.items()))


def _check_cell(path: Path, line: int, column: str, value: str, row: dict[str, str]) -> None:
    where = f"{path}: line {line}, column {column!r}"
    fix = _FIX.replace("FILE", str(path))
    if not value:
        if column in REQUIRED or (column in REQUIRED_MEASURED and row.get("source") == "measured"):
            raise CosaError(f"{where} is empty but required; {fix}")
        return
    if column in CHOICES and value not in CHOICES[column]:
        raise CosaError(f"{where}: {value!r} is not one of {', '.join(CHOICES[column])}; {fix}")
    if column in TEXT_COLUMNS:
        return
    try:
        number = int(value) if column in INT_COLUMNS else float(value)
    except ValueError:
        kind = "an integer" if column in INT_COLUMNS else "a number"
        raise CosaError(f"{where}: {value!r} is not {kind}; {fix}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise CosaError(f"{where}: {value!r} is not a finite number; {fix}")


def read_table(path: str | Path, columns: tuple[str, ...], key: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a results CSV, validated: exact columns, typed values, no duplicate keys."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise CosaError(f"{path}: no header line; restore it from git (git checkout -- {path}) "
                                "or delete the file to start an empty table")
            missing = [c for c in columns if c not in header and c not in ADDED_COLUMNS]
            extra = [c for c in header if c not in columns]
            if missing or extra:
                what = f"missing column(s) {', '.join(missing)}" if missing else f"unknown column(s) {', '.join(extra)}"
                raise CosaError(f"{path}: line 1: {what}; the columns are listed in results/README.md; "
                                f"restore the file from git (git checkout -- {path})")
            rows, lines = _read_rows(path, reader, columns)
    except UnicodeDecodeError as exc:
        raise CosaError(f"{path}: not UTF-8 text (byte {exc.start + 1}); is it a binary file? restore it "
                        f"from git (git checkout -- {path}) or delete it") from None
    except csv.Error as exc:
        raise CosaError(f"{path}: not a readable CSV file ({exc}); restore it from git (git checkout -- {path})") from None
    _check_unique(path, rows, lines, key)
    return rows


def cell_text(column: str, value: Any) -> str:
    """The CSV text of a value: :func:`format_value`, with a text cell that a spreadsheet would run as a
    formula (or that starts with the quote itself) written behind a ``'``."""
    text = format_value(value)
    if column in TEXT_COLUMNS and text.startswith((*FORMULA_START, QUOTE)):
        return QUOTE + text
    return text


def _unquoted(column: str, text: str) -> str:
    return text[1:] if column in TEXT_COLUMNS and text.startswith(QUOTE) else text


def _read_rows(path: Path, reader: csv.DictReader, columns: tuple[str, ...]) -> tuple[list[dict], list[int]]:
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    present = [c for c in columns if c in (reader.fieldnames or ())]
    for row in reader:
        line = reader.line_num
        if None in row or any(row[c] is None for c in present):
            raise CosaError(f"{path}: line {line} has {'more' if None in row else 'fewer'} fields than the "
                            f"header; {_FIX.replace('FILE', str(path))}")
        row = {column: _unquoted(column, text) for column, text in row.items()}
        for column in columns:
            if column not in row:
                row[column] = ADDED_COLUMNS[column](row)
            _check_cell(path, line, column, row[column], row)
        rows.append({c: row[c] for c in columns})
        lines.append(line)
    return rows, lines


def _check_unique(path: Path, rows: list[dict[str, str]], lines: list[int], key: tuple[str, ...]) -> None:
    first_line: dict[tuple[str, ...], int] = {}
    for row, line in zip(rows, lines):
        row_key = tuple(row[k] for k in key)
        if row_key in first_line:
            raise CosaError(f"{path}: line {line} repeats the key ({', '.join(key)}) of line "
                            f"{first_line[row_key]}: {row_key}; delete one of the two rows")
        first_line[row_key] = line


def sort_rows(rows: Iterable[dict[str, str]], key: tuple[str, ...]) -> list[dict[str, str]]:
    """Stable order for written tables: benchmark, variant, then the rest of the key."""
    order = ("benchmark", "variant", *[k for k in key if k not in ("benchmark", "variant")])
    return sorted(rows, key=lambda row: tuple(row[k] for k in order))


def write_tables(tables: dict[Path, tuple[tuple[str, ...], list[dict[str, Any]]]]) -> None:
    """Write every table to a temporary first, then replace them all (all or nothing).

    A row with a carriage return in a cell is written fully quoted: the csv module leaves a lone
    ``\r`` unquoted under a ``\n`` line ending, and a reader would end the row there."""
    paths = list(tables)
    with replacing(paths) as temps:
        for temp, path in zip(temps, paths):
            columns, rows = tables[path]
            with temp.open("w", encoding="utf-8", newline="") as handle:
                plain = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
                quoted = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", quoting=csv.QUOTE_ALL)
                plain.writeheader()
                for row in rows:
                    cells = {c: cell_text(c, row.get(c)) for c in columns}
                    (quoted if any("\r" in cell for cell in cells.values()) else plain).writerow(cells)


@contextmanager
def results_lock(folder: Path, *, reading: bool = False) -> Iterator[None]:
    """Hold the results folder's lock (``.leaderboard.lock``) while its tables are read, merged and
    replaced, so concurrent writers take turns and keep every row.

    ``reading``: a folder where no lock file can be made (read-only, or missing) cannot be being
    written by anyone either, so it is read without one."""
    from filelock import FileLock, Timeout

    lock = FileLock(folder / LOCK_FILE, timeout=LOCK_TIMEOUT_S)
    if not reading:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire()
    except Timeout:
        raise CosaError(f"{folder} has been locked by another 'cosa-eval leaderboard' for {LOCK_TIMEOUT_S} s "
                        f"({lock.lock_file}); wait for it to finish, then run this again") from None
    except OSError as error:
        if not reading or error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT):
            raise
        yield
        return
    try:
        yield
    finally:
        lock.release()
