"""Human labels (CSV or jsonl, one row per document) read as judged records of the judge ``human``.

Columns (the format is documented in ``judges/README.md``):

* ``sample_id`` (``benchmark/variant/config_id/doc_id``), or ``benchmark`` + ``config_id`` +
  ``doc_id`` (+ ``variant`` when the judged files hold more than one variant);
* ``rating``: an integer 0-5 (optional);
* ``compliant``: yes / no (optional; cosapien only);
* ``categories``: the risk categories present, ``;``-separated, or ``none`` (optional; cosalign_test
  only); a blank cell means "not labelled", never "no category";
* ``annotator`` and ``note`` (optional), kept in the record's ``extra`` (``cosa-eval view`` writes
  an adjudicator's note there).

Labels refer to the responses in the judged files they are checked against.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import CosaError, did_you_mean
from ..jsonl import iter_jsonl
from ..taxonomy import ALL_CATEGORIES, split_token
from ..types import JudgedRecord, Sample

HUMAN = "human"
COLUMNS = ("sample_id", "benchmark", "variant", "config_id", "doc_id", "rating", "compliant",
           "categories", "annotator", "note")
NO_CATEGORY = "none"
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_CATEGORY_NAMES = {**{c.lower(): c for c in ALL_CATEGORIES}, **{split_token(c).lower(): c for c in ALL_CATEGORIES}}


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for every non-empty row; ``where`` is ``file: row N`` (CSV) or ``file: line N``."""
    if path.suffix == ".csv":
        yield from _csv_rows(path)
        return
    if path.suffix != ".jsonl":
        raise CosaError(f"{path}: human labels must be a .csv or .jsonl file")
    for number, row in iter_jsonl(path):
        _check_columns(path, list(row), f"line {number}: ")
        yield f"{path}: line {number}", row


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CosaError(f"{path}: not UTF-8 text (byte {exc.start + 1}); save the labels as a UTF-8 CSV") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        _check_columns(path, reader.fieldnames or [])
        rows = [(number, row) for number, row in enumerate(reader, 2)]
    except csv.Error as exc:
        raise CosaError(f"{path}: not a readable CSV file ({exc}); save the labels as a plain CSV") from None
    for number, row in rows:
        if any((value or "").strip() for value in row.values() if isinstance(value, str)):
            yield f"{path}: row {number}", row


def _check_columns(path: Path, names: list[str], where: str = "") -> None:
    for name in names:
        if name not in COLUMNS:
            raise CosaError(f"{path}: {where}unknown column {name!r}{did_you_mean(str(name), list(COLUMNS))}; "
                            f"known columns: {', '.join(COLUMNS)}")


def _text(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _sample_id(row: dict[str, Any], where: str, index: Mapping[tuple[str, str, str], list[str]]) -> str:
    """The row's sample_id, given directly or resolved from benchmark + config_id + doc_id."""
    given = _text(row, "sample_id")
    if given:
        return given
    benchmark, config_id, doc_id = (_text(row, c) for c in ("benchmark", "config_id", "doc_id"))
    if not (benchmark and config_id and doc_id):
        raise CosaError(f"{where}: no sample_id and no benchmark + config_id + doc_id; give one or the other")
    if not doc_id.isdigit():
        raise CosaError(f"{where}: column 'doc_id' is {doc_id!r}; give the lm_eval doc_id, an integer >= 0")
    variant = _text(row, "variant")
    if variant:
        return f"{benchmark}/{variant}/{config_id}/{int(doc_id)}"
    candidates = index.get((benchmark, config_id, str(int(doc_id))), [])
    if len(candidates) > 1:
        raise CosaError(f"{where}: {benchmark}/{config_id}/{doc_id} matches {', '.join(candidates)}; "
                        "add a 'variant' column (0shot or 5shot)")
    return candidates[0] if candidates else f"{benchmark}/?/{config_id}/{int(doc_id)}"


def _rating(row: dict[str, Any], where: str) -> int | None:
    value = row.get("rating")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if isinstance(value, bool) or isinstance(value, float) or text not in {str(k) for k in range(6)}:
        raise CosaError(f"{where}: column 'rating' is {value!r}; give an integer 0-5, or leave it empty")
    return int(text)


def _compliant(row: dict[str, Any], where: str, sample: Sample) -> bool | None:
    value = row.get("compliant")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower()
    if text not in _YES | _NO:
        raise CosaError(f"{where}: column 'compliant' is {value!r}; give yes or no, or leave it empty")
    if sample.schema != "cosapien":
        raise CosaError(f"{where}: column 'compliant' is for cosapien samples, but {sample.sample_id} "
                        f"has schema {sample.schema}; label its risk categories in 'categories'")
    return text in _YES


def _categories(row: dict[str, Any], where: str, sample: Sample) -> dict[str, bool] | None:
    value = row.get("categories")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    names = value if isinstance(value, list) else str(value).split(";")
    names = [str(name).strip() for name in names if str(name).strip()]
    if sample.schema != "cosalign_test":
        raise CosaError(f"{where}: column 'categories' is for cosalign_test samples, but {sample.sample_id} "
                        f"has schema {sample.schema}; label its compliance in 'compliant'")
    flagged: set[str] = set()
    for name in names:
        if name.lower() == NO_CATEGORY and len(names) == 1:
            break
        if name.lower() not in _CATEGORY_NAMES:
            raise CosaError(f"{where}: column 'categories' names unknown category {name!r}"
                            f"{did_you_mean(name, list(ALL_CATEGORIES))}; use the names "
                            f"{'; '.join(ALL_CATEGORIES)}, separated by ';', or '{NO_CATEGORY}'")
        flagged.add(_CATEGORY_NAMES[name.lower()])
    return {category: category in flagged for category in ALL_CATEGORIES}


def _record(row: dict[str, Any], where: str, sample: Sample) -> JudgedRecord:
    rating = _rating(row, where)
    compliant = _compliant(row, where, sample)
    categories = _categories(row, where, sample)
    if rating is None and compliant is None and categories is None:
        raise CosaError(f"{where}: labels nothing; fill 'rating', 'compliant' (cosapien) or "
                        "'categories' (cosalign_test), or drop the row")
    extra = {"source": where, **{name: _text(row, name) for name in ("annotator", "note") if _text(row, name)}}
    return JudgedRecord(sample=sample, judge=HUMAN, rubric_hashes={}, rating=rating, is_compliant=compliant,
                        categories=categories, extra=extra)


def load_human_labels(path: str | Path, samples: Mapping[str, Sample]) -> list[JudgedRecord]:
    """Read and validate a label file against the judged samples (``sample_id -> Sample``)."""
    path = Path(path)
    if not path.is_file():
        raise CosaError(f"human label file {path} does not exist; pass a .csv or .jsonl file (--labels)")
    index: dict[tuple[str, str, str], list[str]] = {}
    for sample_id, sample in samples.items():
        index.setdefault((sample.benchmark, sample.config_id, str(sample.doc_id)), []).append(sample_id)
    records: dict[str, JudgedRecord] = {}
    places: dict[str, str] = {}
    unknown: list[str] = []
    for where, row in _rows(path):
        sample_id = _sample_id(row, where, index)
        if sample_id not in samples:
            unknown.append(sample_id)
            continue
        if sample_id in places:
            raise CosaError(f"{where}: {sample_id} is already labelled at {places[sample_id].split(': ')[-1]}; "
                            "keep one row per document (e.g. the adjudicated label)")
        places[sample_id] = where
        records[sample_id] = _record(row, where, samples[sample_id])
    if unknown:
        raise CosaError(f"{path}: {len(unknown)} labelled samples are not in the judged files (e.g. "
                        f"{', '.join(unknown[:3])}); label samples of the judged run, or pass its judged files")
    if not records:
        raise CosaError(f"{path}: no labels; add one row per document (see judges/README.md)")
    return list(records.values())
