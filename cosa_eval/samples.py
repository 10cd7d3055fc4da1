"""The only module that knows lm_eval's output layout (``samples_<task>_<date>.jsonl``)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from .errors import CosaError
from .jsonl import iter_jsonl
from .types import BENCHMARKS, Sample

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


def sample_from_row(task: str, row: dict[str, Any], where: str) -> Sample:
    """Build a :class:`Sample` from one parsed samples line of a cosa-eval task."""
    doc = row.get("doc")
    if not isinstance(doc, dict) or doc.get("benchmark") not in BENCHMARKS:
        raise CosaError(f"{where}: not a cosa-eval sample (its doc has no cosapien/cosalign_test "
                        "'benchmark' field); judge only samples of cosapien* or cosalign_test* tasks")
    return Sample(
        task=task, benchmark=doc["benchmark"], variant="5shot" if "_5shot" in task else "0shot",
        config_id=doc["config_id"], config_group=doc["config_group"], doc_id=int(row["doc_id"]),
        prompt=doc["prompt"], config=doc.get("config") or doc["system"], response=_response(where, row),
        prompt_type=doc.get("type"), situation=doc.get("situation"), mode=doc.get("mode"),
        allowed_categories=tuple(doc.get("allowed_categories") or ()),
    )


def read_samples(paths: Iterable[str | Path]) -> list[Sample]:
    """Every cosa-eval sample in the given files or lm_eval output folders."""
    samples: list[Sample] = []
    for path in find_sample_files(paths):
        task = task_of(path)
        samples.extend(sample_from_row(task, row, f"{path}: line {number}")
                       for number, row in iter_jsonl(path, fix="re-run lm_eval with --log_samples"))
    return samples


def read_run_info(path: str | Path) -> dict[str, Any]:
    """Model name/args, lm_eval version and date from the newest ``results_*.json`` beside samples."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    results = sorted(folder.rglob("results_*.json"))
    if not results:
        return {}
    data = json.loads(results[-1].read_text(encoding="utf-8"))
    config = data.get("config", {})
    return {"model": data.get("model_name") or config.get("model"), "model_args": config.get("model_args"),
            "lm_eval_version": data.get("lm_eval_version"), "date": data.get("date"),
            "results_file": str(results[-1])}
