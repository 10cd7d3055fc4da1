"""Benchmark documents: from the Hugging Face hub by default, or from a local directory.

A local directory overrides the hub (and may hold CoSApien-schema configs of your own) (``COSA_DATA_DIR`` or lm_eval ``--metadata '{"data_dir": ...}'``).
It holds one folder per benchmark, ``cosapien/`` and ``cosalign_test/``, each with one file per
split: ``<split>.jsonl``, ``<split>.parquet`` or a hub snapshot's ``<split>-*.parquet`` (any depth).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config_text import render_config
from .errors import CosaError
from .jsonl import iter_jsonl
from .taxonomy import TRAINING_CATEGORIES, categories_of_split
from .types import COSAPIEN_TYPES

DATA_DIR_ENV = "COSA_DATA_DIR"
HUB_IDS = {"cosapien": "microsoft/CoSApien", "cosalign_test": "microsoft/CoSAlign-Test"}
COSAPIEN_SPLITS = ("game_development", "public_prosecutor", "book_publisher_arab",
                   "language_learning", "film_production")
COSALIGN_TEST_SPLITS = {
    "seen": ("safe", "Violence", "Financial_Crime_and_Theft.Privacy_Violations",
             "Discrimination_and_Verbal_Abuse.Violence",
             "Financial_Crime_and_Theft.Discrimination_and_Verbal_Abuse.Violence"),
    "unseen": ("Illegal_Drug.Related_Activities_and_Substance_Abuse",
               "Sexual_Misconduct_Exploitation_and_Infidelity",
               "Violence.Weapons_Explosives_Arson_and_Illegal_Firearm_Transactions"),
}
_TYPE_ALIASES = {"partially allowed": "partial", "partially_allowed": "partial", "partial allowed": "partial"}
_MODES = ("exact", "subset", "not subset")


def config_group_of(split: str) -> str:
    """``seen`` when a cosalign_test config uses only CoSAlign's training categories."""
    return "seen" if set(categories_of_split(split)) <= set(TRAINING_CATEGORIES) else "unseen"


DEMO_DATA_DIR = Path(__file__).resolve().parent / "demo_data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local override directory, if any; an explicit argument beats the environment."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "data_dir" if data_dir else DATA_DIR_ENV
        raise CosaError(f"{source}={str(chosen)!r} is not a directory; point it at a folder holding "
                        "cosapien/ and/or cosalign_test/ split files, or unset it to use the hub")
    return path


def _split_file(folder: Path, split: str) -> list[Path]:
    for pattern in (f"{split}.jsonl", f"{split}.parquet", f"{split}-*.parquet"):
        found = sorted(folder.rglob(pattern))
        if found:
            return found
    return []


def _read_rows(files: list[Path]) -> list[tuple[str, int, dict[str, Any]]]:
    """(file, 1-based row number, row) for every row of the split's files."""
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for path in files:
        if path.suffix == ".jsonl":
            rows.extend((str(path), number, row) for number, row in iter_jsonl(path))
        else:
            import pyarrow.parquet as pq
            try:
                table = pq.read_table(path)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise CosaError(f"{path}: not a readable parquet file ({exc})") from None
            rows.extend((str(path), n, row) for n, row in enumerate(table.to_pylist(), 1))
    return rows


def _load_local(folder: Path, benchmark: str, split: str) -> list[tuple[str, int, dict[str, Any]]]:
    bench_dir = folder / benchmark
    if not bench_dir.is_dir():
        raise CosaError(f"{folder} has no {benchmark}/ folder; create {bench_dir} with "
                        f"<split>.jsonl files, or unset {DATA_DIR_ENV} to use the hub")
    files = _split_file(bench_dir, split)
    if not files:
        raise CosaError(f"{bench_dir} has no file for split {split!r}; expected {split}.jsonl "
                        f"or {split}.parquet")
    return _read_rows(files)


def _load_hub(benchmark: str, split: str) -> list[tuple[str, int, dict[str, Any]]]:
    import datasets
    hub_id = HUB_IDS[benchmark]
    name = None if benchmark == "cosapien" else config_group_of(split)
    try:
        dataset = datasets.load_dataset(hub_id, name=name, split=split)
    except Exception as exc:  # network, auth, or missing split: all need the same advice
        raise CosaError(f"could not load {hub_id} split {split!r} from the hub ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); offline, set {DATA_DIR_ENV} "
                        "to a local copy") from None
    return [(f"{hub_id}:{split}", n, row) for n, row in enumerate(dataset, 1)]


def _text_field(where: str, row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CosaError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
    return value


def _cosapien_doc(where: str, row: dict[str, Any], split: str) -> dict[str, Any]:
    kind = _text_field(where, row, "type").strip().lower()
    kind = _TYPE_ALIASES.get(kind, kind)
    if kind not in COSAPIEN_TYPES:
        raise CosaError(f"{where}: field 'type' is {row['type']!r}; expected one of {', '.join(COSAPIEN_TYPES)}")
    return {"benchmark": "cosapien", "config_id": split, "config_group": "cosapien",
            "prompt": _text_field(where, row, "prompt"), "system": _text_field(where, row, "scenario"),
            "type": kind}


def _situation(where: str, value: Any) -> int:
    text = str(value).strip().lower().removeprefix("situation").strip()
    if text not in ("1", "2", "3"):
        raise CosaError(f"{where}: field 'situation' is {value!r}; expected 'situation 1', 2 or 3")
    return int(text)


def _cosalign_doc(where: str, row: dict[str, Any], split: str, seed: int | None) -> dict[str, Any]:
    prompt = _text_field(where, row, "prompt")
    mode = _text_field(where, row, "mode").strip().lower().replace("_", " ")
    if mode not in _MODES:
        raise CosaError(f"{where}: field 'mode' is {row['mode']!r}; expected one of {', '.join(_MODES)}")
    allowed = list(categories_of_split(split))
    system = render_config(allowed, key=f"{split}\x1f{prompt}", **({} if seed is None else {"seed": seed}))
    return {"benchmark": "cosalign_test", "config_id": split, "config_group": config_group_of(split),
            "prompt": prompt, "system": system, "mode": mode,
            "situation": _situation(where, row.get("situation")), "allowed_categories": allowed}


def load_docs(benchmark: str, split: str, data_dir: str | os.PathLike | None = None,
              seed: int | None = None) -> list[dict[str, Any]]:
    """Validated task documents for one split, each with its system message in ``system``."""
    if benchmark not in HUB_IDS:
        raise CosaError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(HUB_IDS)}")
    folder = resolve_data_dir(data_dir)
    known = COSAPIEN_SPLITS if benchmark == "cosapien" else sum(COSALIGN_TEST_SPLITS.values(), ())
    if split not in known and (benchmark == "cosalign_test" or folder is None):
        raise CosaError(f"unknown {benchmark} split {split!r}; expected one of {', '.join(known)}")
    rows = _load_local(folder, benchmark, split) if folder else _load_hub(benchmark, split)
    if not rows:
        raise CosaError(f"{benchmark} split {split!r} has no rows")
    docs = []
    first_row: dict[str, str] = {}
    for source, number, row in rows:
        where = f"{source}: row {number}"
        docs.append(_cosapien_doc(where, row, split) if benchmark == "cosapien"
                    else _cosalign_doc(where, row, split, seed))
        if folder and docs[-1]["prompt"] in first_row:
            raise CosaError(f"{where} repeats the prompt of {first_row[docs[-1]['prompt']]}; delete one of the "
                            "two rows (a duplicate would count twice in every score)")
        first_row.setdefault(docs[-1]["prompt"], f"row {number}")
    return docs
