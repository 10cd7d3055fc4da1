"""Small judged runs with hand-computable scores, shared by the scoring tests."""
from __future__ import annotations

import json
from pathlib import Path

from cosa_eval.taxonomy import ALL_CATEGORIES, categories_of_split
from cosa_eval.types import JudgedRecord, Sample

SAFE, VIOLENCE = "safe", "Violence"
SEXUAL = "Sexual_Misconduct_Exploitation_and_Infidelity"
UNSEEN = {SEXUAL}
HASHES = {"helpfulness": "h111", "categories": "c222"}


def rec(config_id: str, doc_id: int, rating: int | None = None, flags: tuple[str, ...] = (), *,
        failure: str | None = None, situation: int | None = None, benchmark: str = "cosalign_test",
        variant: str = "0shot", judge: str = "judge-x", compliant: bool | None = None,
        prompt_type: str | None = None, hashes: dict[str, str] | None = None, schema: str = "") -> JudgedRecord:
    """One judged record; cosalign_test-schema categories are all 8, True for those in ``flags``."""
    cosalign = (schema or benchmark) == "cosalign_test"
    sample = Sample(
        task=f"{benchmark}_{config_id}", benchmark=benchmark, variant=variant, config_id=config_id,
        config_group=("unseen" if config_id in UNSEEN else "seen") if cosalign else "cosapien",
        doc_id=doc_id, prompt=f"prompt {doc_id}", config=f"config {config_id}", response=f"response {doc_id}",
        prompt_type=prompt_type, situation=situation, mode=None,
        allowed_categories=categories_of_split(config_id) if cosalign else (),
        schema=schema or benchmark,
    )
    categories = None
    if cosalign and failure is None:
        categories = {c: c in flags for c in ALL_CATEGORIES}
    return JudgedRecord(sample=sample, judge=judge, rubric_hashes=dict(hashes or HASHES),
                        rating=None if failure else rating, is_compliant=None if failure else compliant,
                        categories=categories, failure=failure)


def run_a(**kw) -> list[JudgedRecord]:
    """Run A on cosalign_test (arithmetic in test_metrics.py)."""
    v, o, p = "Violence", "Other Harms", "Privacy Violations"
    s = "Sexual Misconduct, Exploitation, and Infidelity"
    return [
        rec(SAFE, 0, 5, situation=1, **kw), rec(SAFE, 1, 0, situation=3, **kw),
        rec(SAFE, 2, 3, (v,), situation=3, **kw), rec(SAFE, 3, failure="unparseable", situation=3, **kw),
        rec(VIOLENCE, 0, 4, (v,), situation=1, **kw), rec(VIOLENCE, 1, 0, situation=1, **kw),
        rec(VIOLENCE, 2, 2, (v, o), situation=2, **kw), rec(VIOLENCE, 3, 0, (p,), situation=3, **kw),
        rec(SEXUAL, 0, 5, (s,), situation=1, **kw), rec(SEXUAL, 1, failure="api_error", situation=2, **kw),
    ]


def run_b(**kw) -> list[JudgedRecord]:
    """Run B: the same ten prompts, all valid and safe; docs 0-1 rated 5, docs 2-3 rated 0."""
    return [rec(r.sample.config_id, r.sample.doc_id, 5 if r.sample.doc_id < 2 else 0,
                ("Violence",) if r.sample.config_id == VIOLENCE else (), situation=r.sample.situation, **kw)
            for r in run_a()]


def cosapien_run(**kw) -> list[JudgedRecord]:
    """Two CoSApien configs, judged by compliance (arithmetic in test_metrics.py)."""
    b = {"benchmark": "cosapien", **kw}
    return [
        rec("game_development", 0, 5, compliant=True, prompt_type="allowed", **b),
        rec("game_development", 1, 0, compliant=True, prompt_type="allowed", **b),
        rec("game_development", 2, 5, compliant=False, prompt_type="disallowed", **b),
        rec("game_development", 3, 0, compliant=True, prompt_type="disallowed", **b),
        rec("film_production", 0, 4, compliant=True, prompt_type="partial", **b),
        rec("film_production", 1, failure="truncated", prompt_type="allowed", **b),
    ]


def write_jsonl(path: Path, records: list[JudgedRecord]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records), encoding="utf-8")
    return path


def write_run(folder: Path, records: list[JudgedRecord], model: str | None = None,
              model_args: str = "", date: float = 1_700_000_000.0) -> Path:
    """An lm_eval-like output folder: results_*.json (when ``model``) + one judged file per task."""
    folder.mkdir(parents=True, exist_ok=True)
    if model:
        results = {"model_name": model, "config": {"model": "hf", "model_args": model_args},
                   "lm_eval_version": "0.4.9", "date": date}
        (folder / "results_2024-01-01T00-00-00.json").write_text(json.dumps(results), encoding="utf-8")
    by_task: dict[str, list[JudgedRecord]] = {}
    for record in records:
        by_task.setdefault(f"{record.sample.benchmark}_{record.sample.variant}", []).append(record)
    for task, group in by_task.items():
        write_jsonl(folder / f"judged_{task}.jsonl", group)
    return folder
