"""Judging: a judge (YAML + rubrics + backend) turns samples into judged records.

Public API (imported lazily, so ``cosa-eval --help`` stays instant)::

    load_judge(name_or_path, *, concurrency=None, endpoint=None, parser=None) -> Judge
    judge_samples(samples, judge, *, cache_path=None, max_cost=None, progress=True) -> records
    judge_run(...) -> JudgingRun(records, stats)   # the same, with accounting
    estimate(samples, judge, *, cache_path=None) -> Estimate
    JudgeSession(judge, cache_path=...).ask(rubric, items) -> verdicts   # any rubric, e.g. training's
    read_judged(paths) / write_judged(path, records)   # from cosa_eval.records
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Judge": "judge", "load_judge": "judge",
    "judge_samples": "engine", "judge_run": "engine", "estimate": "engine",
    "JudgingRun": "engine", "RunStats": "engine", "Estimate": "engine",
    "JudgeSession": "engine", "Verdict": "engine",
    "read_judged": "..records", "write_judged": "..records",
    "JudgeCache": "cache", "default_cache_path": "cache",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = _EXPORTS[name]
        return getattr(import_module(module if module.startswith(".") else f".{module}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
