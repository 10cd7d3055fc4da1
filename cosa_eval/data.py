"""Benchmark documents: from the Hugging Face hub by default, or from a local directory.

A local directory overrides the hub (``COSA_DATA_DIR`` or lm_eval ``--metadata '{"data_dir": ...}'``).
It holds one folder per benchmark, named as the task YAML declares it (``cosapien/``,
``cosalign_test/``, or your own such as ``acme/``), each with one file per config:
``<config_id>.jsonl``, ``<config_id>.parquet`` or a hub snapshot's ``<config_id>-*.parquet`` (any
depth). The schema (``cosapien`` or ``cosalign_test``) says which fields a row has.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config_text import frame_scenario, render_config
from .errors import CosaError
from .fewshot import demos_for
from .jsonl import iter_jsonl, text_field
from .taxonomy import TRAINING_CATEGORIES, categories_of_split
from .types import COSAPIEN_TYPES

DATA_DIR_ENV = "COSA_DATA_DIR"
SCHEMAS = ("cosapien", "cosalign_test")
HUB_IDS = {"cosapien": "microsoft/CoSApien", "cosalign_test": "microsoft/CoSAlign-Test"}
HUB_DOCS_PER_CONFIG = {"cosapien": 40, "cosalign_test": 400}     # what each hub benchmark declares
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
        raise CosaError(f"{source}={chosen!r} is not a directory; point it at a folder holding one "
                        "folder of split files per benchmark (cosapien/, cosalign_test/, ...), or unset it "
                        "to use the hub")
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


def _cosapien_doc(where: str, row: dict[str, Any]) -> dict[str, Any]:
    kind = text_field(row, "type", where).strip().lower()
    kind = _TYPE_ALIASES.get(kind, kind)
    if kind not in COSAPIEN_TYPES:
        raise CosaError(f"{where}: field 'type' is {row['type']!r}; expected one of {', '.join(COSAPIEN_TYPES)}")
    scenario = text_field(row, "scenario", where)
    return {"config_group": "cosapien", "prompt": text_field(row, "prompt", where),
            "system": frame_scenario(scenario), "config": scenario, "type": kind}


def _situation(where: str, value: Any) -> int:
    text = str(value).strip().lower().removeprefix("situation").strip()
    if text not in ("1", "2", "3"):
        raise CosaError(f"{where}: field 'situation' is {value!r}; expected 'situation 1', 2 or 3")
    return int(text)


def _cosalign_doc(where: str, row: dict[str, Any], split: str, seed: int | None) -> dict[str, Any]:
    prompt = text_field(row, "prompt", where)
    mode = text_field(row, "mode", where).strip().lower().replace("_", " ")
    if mode not in _MODES:
        raise CosaError(f"{where}: field 'mode' is {row['mode']!r}; expected one of {', '.join(_MODES)}")
    allowed = list(categories_of_split(split))
    system = render_config(allowed, key=f"{split}\x1f{prompt}", **({} if seed is None else {"seed": seed}))
    return {"config_group": config_group_of(split), "prompt": prompt, "system": system, "config": system,
            "mode": mode, "situation": _situation(where, row.get("situation")), "allowed_categories": allowed}


def _check_known(schema: str, benchmark: str, config_id: str, local: bool) -> None:
    """The hub's benchmarks have fixed configs; a local folder may add configs of your own."""
    if schema not in SCHEMAS:
        raise CosaError(f"unknown schema {schema!r}; expected one of {', '.join(SCHEMAS)}")
    if benchmark not in HUB_IDS:
        if not local:
            raise CosaError(f"benchmark {benchmark!r} is not on the hub; set {DATA_DIR_ENV} (or --metadata "
                            f"data_dir) to a folder holding {benchmark}/{config_id}.jsonl")
        if schema == "cosalign_test":
            categories_of_split(config_id)  # the config id must spell its allowed categories
        return
    known = COSAPIEN_SPLITS if benchmark == "cosapien" else sum(COSALIGN_TEST_SPLITS.values(), ())
    if config_id not in known and (benchmark == "cosalign_test" or not local):
        raise CosaError(f"unknown {benchmark} split {config_id!r}; expected one of {', '.join(known)}")


def load_docs(schema: str, config_id: str, data_dir: str | os.PathLike | None = None,
              seed: int | None = None, *, benchmark: str | None = None,
              variant: str = "0shot") -> list[dict[str, Any]]:
    """Validated task documents of one config. Each carries its declared identity (``benchmark``,
    ``schema``, ``variant``, ``config_id``), its system message, the ``config`` the judge reads,
    and its in-context ``demos`` (none for 0shot)."""
    benchmark = benchmark or schema
    folder = resolve_data_dir(data_dir)
    _check_known(schema, benchmark, config_id, local=folder is not None)
    rows = _load_local(folder, benchmark, config_id) if folder else _load_hub(benchmark, config_id)
    if not rows:
        raise CosaError(f"{benchmark} split {config_id!r} has no rows")
    docs = []
    first_row: dict[str, str] = {}
    for source, number, row in rows:
        where = f"{source}: row {number}"
        doc = (_cosapien_doc(where, row) if schema == "cosapien"
               else _cosalign_doc(where, row, config_id, seed))
        demos = demos_for(schema, config_id, doc["prompt"], variant, doc.get("allowed_categories", ()), seed)
        docs.append({"benchmark": benchmark, "schema": schema, "variant": variant, "config_id": config_id,
                     **doc, "demos": demos})
        if folder and doc["prompt"] in first_row:
            raise CosaError(f"{where} repeats the prompt of {first_row[doc['prompt']]}; delete one of the "
                            "two rows (a duplicate would count twice in every score)")
        first_row.setdefault(doc["prompt"], f"row {number}")
    return docs
