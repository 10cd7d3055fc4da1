"""The only module that knows lm_eval's output layout (``samples_<task>_<date>.jsonl``)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from .errors import CosaError
from .jsonl import iter_jsonl, read_json_object
from .types import COSAPIEN_TYPES, SCHEMAS, VARIANTS, Sample

_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")


def find_sample_files(paths: Iterable[str | Path]) -> list[Path]:
    """Sample files under ``paths`` (files or lm_eval output folders); the newest run per task."""
    newest: dict[tuple[Path, str], tuple[str, Path]] = {}
    for given in map(Path, paths):
        if not given.exists():
            raise CosaError(f"{given} does not exist; pass lm_eval samples_*.jsonl files or the "
                            "--output_path folder of a run made with --log_samples")
        candidates = [given] if given.is_file() else sorted(given.rglob("samples_*.jsonl"))
        for path in candidates:
            match = _SAMPLES_NAME.match(path.name)
            if not match:
                raise CosaError(f"{path} is not an lm_eval samples file (samples_<task>_<date>.jsonl)")
            key = (path.parent, match["task"])
            if key not in newest or newest[key][0] < match["date"]:
                newest[key] = (match["date"], path)
    files = sorted(path for _, path in newest.values())
    if not files:
        raise CosaError(f"no samples_*.jsonl under {', '.join(map(str, paths))}; run lm_eval with "
                        "--log_samples --output_path DIR first")
    return files


def task_of(path: Path) -> str:
    match = _SAMPLES_NAME.match(path.name)
    if not match:
        raise CosaError(f"{path} is not an lm_eval samples file (samples_<task>_<date>.jsonl)")
    return match["task"]


def _response(where: str, row: dict[str, Any]) -> str:
    resps = row.get("filtered_resps") or row.get("resps")
    while isinstance(resps, list) and resps:
        resps = resps[0]
    if not isinstance(resps, str):
        raise CosaError(f"{where}: no response text in 'filtered_resps'/'resps'")
    return resps


_FIX = "re-run lm_eval with a cosa-eval task (its docs declare benchmark, schema, variant, config_id)"


def _field(where: str, doc: dict[str, Any], name: str, allowed: tuple[str, ...] = ()) -> str:
    """A doc field that must be a non-empty string (one of ``allowed`` when given)."""
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip() or (allowed and value not in allowed):
        want = f"one of {', '.join(allowed)}" if allowed else "a non-empty string"
        raise CosaError(f"{where}: doc.{name} is {str(value)[:60]!r}, not {want}; {_FIX}")
    return value


def _doc_id(where: str, row: dict[str, Any]) -> int:
    value = row.get("doc_id")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CosaError(f"{where}: doc_id is {value!r}, not an integer >= 0; is this an lm_eval samples file?")
    return value


def _schema_fields(where: str, doc: dict[str, Any], schema: str) -> dict[str, Any]:
    """The fields the schema's safety question needs, checked."""
    if schema == "cosapien":
        return {"prompt_type": _field(where, doc, "type", COSAPIEN_TYPES)}
    allowed = doc.get("allowed_categories")
    situation = doc.get("situation")
    if not isinstance(allowed, list) or not all(isinstance(c, str) for c in allowed):
        raise CosaError(f"{where}: doc.allowed_categories is {str(allowed)[:60]!r}, not a list of names; {_FIX}")
    if situation is not None and (isinstance(situation, bool) or situation not in (1, 2, 3)):
        raise CosaError(f"{where}: doc.situation is {situation!r}, not 1, 2 or 3; {_FIX}")
    return {"situation": situation, "mode": doc.get("mode"), "allowed_categories": tuple(allowed)}


def sample_from_row(task: str, row: dict[str, Any], where: str) -> Sample:
    """Build a :class:`Sample` from one parsed samples line of a cosa-eval task.

    The task's identity is what its docs declare (``benchmark``, ``schema``, ``variant``,
    ``config_id``), never guessed from the task name.
    """
    doc = row.get("doc")
    if not isinstance(doc, dict) or "benchmark" not in doc:
        raise CosaError(f"{where}: not a cosa-eval sample (its doc has no 'benchmark' field); judge only "
                        "samples of cosa-eval tasks (cosapien*, cosalign_test*, or your own in that shape)")
    schema = _field(where, doc, "schema", SCHEMAS)
    return Sample(
        task=task, benchmark=_field(where, doc, "benchmark"), variant=_field(where, doc, "variant", VARIANTS),
        config_id=_field(where, doc, "config_id"), config_group=_field(where, doc, "config_group"),
        doc_id=_doc_id(where, row), prompt=_field(where, doc, "prompt"), config=_field(where, doc, "config" if "config" in doc else "system"),
        response=_response(where, row), schema=schema, **_schema_fields(where, doc, schema),
    )


def read_samples(paths: Iterable[str | Path]) -> list[Sample]:
    """Every cosa-eval sample in the given files or lm_eval output folders, each document once
    (checked here, before any judge call is paid for)."""
    samples: list[Sample] = []
    first: dict[str, str] = {}
    for path in find_sample_files(paths):
        task = task_of(path)
        for number, row in iter_jsonl(path, fix="re-run lm_eval with --log_samples"):
            where = f"{path}: line {number}"
            sample = sample_from_row(task, row, where)
            seen = first.setdefault(sample.sample_id, where)
            if seen != where:
                raise CosaError(f"{where}: document {sample.sample_id} is already at {seen}; each document "
                                "is judged once: remove the repeated line, or judge each lm_eval run on its own")
            samples.append(sample)
    return samples


def read_run_info(path: str | Path) -> dict[str, Any]:
    """Model name/args, lm_eval version, date, ``--limit`` and per-task document counts (``n_samples``:
    task -> {original, effective}) from the newest ``results_*.json`` beside samples.

    {} when there is none; several runs' results under one folder, or a broken file, are errors.
    """
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    results = sorted(folder.rglob("results_*.json"))
    if not results:
        return {}
    runs = sorted({str(p.parent) for p in results})
    if len(runs) > 1:
        raise CosaError(f"{folder} holds several lm_eval runs ({', '.join(runs)}); give each run's folder separately")
    newest = max(results, key=lambda p: p.name)
    data = read_json_object(newest, "lm_eval results file",
                            "restore it from the lm_eval run, or delete it and pass --model NAME")
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    counts = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    return {"model": data.get("model_name") or config.get("model"), "model_args": config.get("model_args"),
            "lm_eval_version": data.get("lm_eval_version"), "date": data.get("date"),
            "results_file": str(newest), "limit": config.get("limit"),
            "n_samples": {task: count for task, count in counts.items() if isinstance(count, dict)
                          and all(isinstance(count.get(k), int) for k in ("original", "effective"))}}
