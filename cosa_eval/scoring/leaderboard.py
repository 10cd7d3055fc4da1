"""Judged runs -> ``results/`` leaderboard rows (add / update), and paired comparison of two runs.

A run is an lm_eval output folder holding ``judged_*.jsonl`` (or those files given directly). Each
(benchmark, variant, judge) in it becomes one leaderboard row plus one row per config; adding the
same run again replaces its rows. Everything is read, checked and computed before any file is
written, and the two CSVs are written all or nothing.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import CosaError, redact
from ..manifest import check_run_files
from ..records import find_judged_files, read_judged
from ..samples import read_run_info
from ..snapshots import answered_by, snapshot_label
from ..types import JudgedRecord
from . import tables
from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, paired_compare
from .coverage import judge_caveat, partial_reason
from .metrics import CELLS, group_key, score_records

DEFAULT_MIN_VALID_RATE = 0.95


@dataclass
class Run:
    """The judged records of one run, and what is known of the model and judges that produced them."""

    path: Path
    records: list[JudgedRecord]
    info: dict[str, str] = field(default_factory=dict)
    judges: dict[str, dict[str, str]] = field(default_factory=dict)   # judge -> parser, judge_endpoint
    lm_eval: dict[str, Any] = field(default_factory=dict)            # lm_eval's --limit and n_samples

    def groups(self) -> dict[tuple[str, str], list[JudgedRecord]]:
        """Records by ("benchmark/variant", judge), sorted."""
        grouped: dict[tuple[str, str], list[JudgedRecord]] = defaultdict(list)
        for record in self.records:
            grouped[(group_key(record), record.judge)].append(record)
        return dict(sorted(grouped.items()))


def load_run(path: str | Path, model: str | None = None, *, need_model: bool = True) -> Run:
    """Read and check the judged files of a run (a folder or judged .jsonl files)."""
    path = Path(path)
    files = find_judged_files([path])
    manifests = check_run_files(files)
    records: list[JudgedRecord] = []
    judges: dict[str, dict[str, str]] = {}
    for file in files:
        found = read_judged([file])
        if not found:
            raise CosaError(f"{file} holds no judged records; re-run 'cosa-eval judge' on its samples or delete it")
        records.extend(found)
        _note_judges(judges, found, manifests.get(file.parent, {}), file)
    info = read_run_info(path) or next((m["run"] for m in manifests.values() if isinstance(m.get("run"), dict)
                                        and m["run"].get("model")), {})
    return Run(path, records, _run_info(path, files, info, model, need_model), judges,
               {"limit": info.get("limit"), "n_samples": info.get("n_samples") or {}})


def _note_judges(judges: dict[str, dict[str, str]], records: list[JudgedRecord], manifest: dict, file: Path) -> None:
    """Parser and endpoint of each judge (from the run manifest); one judge, one setting per run."""
    identity = manifest.get("judge_identity") if isinstance(manifest.get("judge_identity"), dict) else {}
    setting = {"parser": str(manifest.get("parser") or "final"),
               "judge_endpoint": redact(identity.get("endpoint") or manifest.get("judge_endpoint") or "")}
    for name in sorted({record.judge for record in records}):
        known = judges.setdefault(name, setting)
        if known != setting:
            raise CosaError(f"{file}: judge {name!r} ran with {setting} here but with {known} in another judged "
                            "file of this run; add each judge run's folder separately")


def short_model_name(name: str) -> str:
    """A leaderboard name for a model: ``org/name`` from a hub cache path, a local path's folder name."""
    cached = re.search(r"models--([^/\\]+?)--([^/\\]+)", name)
    if cached:
        return f"{cached[1]}/{cached[2]}"
    if name.startswith(("/", "~", ".")) or "\\" in name:
        return Path(name.rstrip("/\\")).name or name
    return name


def _run_info(path: Path, files: list[Path], info: dict[str, Any], model: str | None,
              need_model: bool) -> dict[str, str]:
    name = model or (short_model_name(str(info["model"])) if info.get("model") else None)
    if not name and need_model:
        raise CosaError(f"no lm_eval results_*.json in {path if path.is_dir() else path.parent} names the "
                        "model; pass --model NAME (and keep the judged files beside lm_eval's output)")
    args = info.get("model_args") or ""
    if isinstance(args, dict):
        args = ",".join(f"{k}={v}" for k, v in args.items())
    return {"model": name or str(path), "model_args": str(args),
            "lm_eval_version": str(info.get("lm_eval_version") or ""),
            "date": _date_text(info.get("date"), files, str(info.get("results_file") or path))}


def _date_text(value: Any, files: list[Path], source: str) -> str:
    """lm_eval's run date (a Unix time) as ISO 8601 UTC; else the newest judged file's time."""
    if isinstance(value, str) and value:
        try:
            value = float(value)
        except ValueError:
            return value
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        value = max(file.stat().st_mtime for file in files)
    try:
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        raise CosaError(f"{source}: field 'date' is {value!r}, not a Unix time of a real day; set it to the "
                        "run's time in seconds since 1970, or remove the field (the judged files' time is "
                        "used then)") from None


def run_rows(run: Run, *, cascade_oracle: bool = False, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = DEFAULT_SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(leaderboard rows, per-config rows) of a run: one leaderboard row per benchmark/variant/judge."""
    rows: list[dict[str, Any]] = []
    config_rows: list[dict[str, Any]] = []
    for (_, _judge), records in run.groups().items():
        score = score_records(records, cascade_oracle=cascade_oracle)
        if score["overall"]["cosa_score"] is None:
            raise CosaError(f"{run.path}: no valid judged response in {group_key(records[0])} "
                            f"(failures: {tables.pairs_text(score['overall']['failures'])}); re-judge it")
        ci = bootstrap_ci(records, n_resamples=n_resamples, seed=seed, cascade_oracle=cascade_oracle)
        setting = run.judges.get(score["judge"], {"parser": "final", "judge_endpoint": ""})
        key = {"model": run.info["model"], "model_args": run.info["model_args"],
               "benchmark": score["benchmark"], "variant": score["variant"],
               "judge": score["judge"], "scoring": score["scoring"], "parser": setting["parser"]}
        rows.append({**_summary_row(key, run.info, score, ci), "judge_endpoint": setting["judge_endpoint"],
                     "partial": partial_reason(records, run.lm_eval), "judge_caveat": judge_caveat(records),
                     "judge_snapshot": snapshot_label(answered_by(records))})
        for config_id, metrics in score["configs"].items():
            config_rows.append(_config_row(key, config_id, metrics, ci["configs"].get(config_id)))
    return rows, config_rows


def _summary_row(key: dict[str, str], info: dict[str, str], score: dict, ci: dict) -> dict[str, Any]:
    overall = score["overall"]
    row: dict[str, Any] = {
        **key, "rubric_hashes": tables.pairs_text(score["rubric_hashes"]),
        "lm_eval_version": info["lm_eval_version"], "cosa_eval_version": __version__, "date": info["date"],
        "n": overall["n"], "n_valid": overall["n_valid"], "valid_rate": overall["valid_rate"],
        "failures": _failures_text(overall["failures"]), "cosa_score": overall["cosa_score"],
        "cosa_score_ci_low": ci["overall"]["low"], "cosa_score_ci_high": ci["overall"]["high"],
        **{cell: overall[cell] for cell in CELLS},
        "helpful_rate": overall["helpful_rate"], "safe_rate": overall["safe_rate"],
        "over_refusal": overall["over_refusal"], "bootstrap_resamples": ci["n_resamples"],
        "bootstrap_seed": ci["seed"], "source": "measured", "reference": "",
    }
    for group in ("seen", "unseen"):
        if group in score["groups"]:
            metrics, interval = score["groups"][group], ci["groups"].get(group, {})
            row[f"{group}_cosa_score"] = metrics["cosa_score"]
            row[f"{group}_cosa_score_ci_low"] = interval.get("low")
            row[f"{group}_cosa_score_ci_high"] = interval.get("high")
            row[f"{group}_helpful_safe"] = metrics["helpful_safe"]
            row[f"{group}_helpful_unsafe"] = metrics["helpful_unsafe"]
    return row


def _failures_text(failures: dict[str, int]) -> str:
    return tables.pairs_text({kind: count for kind, count in failures.items() if count})


def _config_row(key: dict[str, str], config_id: str, metrics: dict, interval: dict | None) -> dict[str, Any]:
    return {
        **key, "config_id": config_id, "config_group": metrics["config_group"],
        **{name: metrics[name] for name in ("n", "n_valid", "valid_rate", "cosa_score", *CELLS,
                                            "helpful_rate", "safe_rate", "n_fully_allowed", "over_refusal")},
        "failures": _failures_text(metrics["failures"]),
        "cosa_score_ci_low": (interval or {}).get("low"), "cosa_score_ci_high": (interval or {}).get("high"),
        "violations": tables.pairs_text({c: n for c, n in metrics["violations"].items() if n}),
        "source": "measured",
    }


def _text_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{c: tables.format_value(v) for c, v in row.items()} for row in rows]


def check_valid_rate(run: Run, rows: list[dict[str, Any]], min_valid_rate: float) -> None:
    """Refuse a row whose share of validly judged responses is below ``min_valid_rate``."""
    if not 0 <= min_valid_rate <= 1:
        raise CosaError(f"--min-valid-rate is {min_valid_rate}; give a fraction from 0 to 1 (default "
                        f"{DEFAULT_MIN_VALID_RATE})")
    for row in rows:
        if row["n_valid"] < min_valid_rate * row["n"]:
            raise CosaError(f"{run.path}: {row['benchmark']}/{row['variant']} judged by {row['judge']} has valid "
                            f"{row['n_valid']}/{row['n']} ({row['n_valid'] / row['n']:.1%}), below --min-valid-rate "
                            f"{min_valid_rate:g}; re-run 'cosa-eval judge' to retry the unjudged responses "
                            "(answered calls come from the cache), or lower --min-valid-rate")


def check_complete(run: Run, rows: list[dict[str, Any]]) -> None:
    """Refuse a row that does not cover its whole benchmark (see :mod:`.coverage`)."""
    for row in rows:
        if row["partial"]:
            raise CosaError(f"{run.path}: {row['benchmark']}/{row['variant']} is partial ({row['partial']}); "
                            "run the whole benchmark (no --limit or --samples), or pass --allow-partial to add "
                            "it marked as partial")


def check_one_snapshot(run: Run, rows: list[dict[str, Any]]) -> None:
    """Refuse a row whose answers came from more than one judge snapshot."""
    for row in rows:
        if "+" in row["judge_snapshot"]:
            raise CosaError(f"{run.path}: {row['benchmark']}/{row['variant']} judged by {row['judge']} mixes answers "
                            f"of judge snapshots {row['judge_snapshot'].replace('+', ' and ')}; re-judge it with a "
                            "fresh cache (--cache NEW) so one snapshot answers all, or pass --allow-mixed-judge")


def add_runs(runs: list[str | Path], results_dir: str | Path | None = None, *, model: str | None = None,
             cascade_oracle: bool = False, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
             min_valid_rate: float = DEFAULT_MIN_VALID_RATE, allow_partial: bool = False,
             allow_mixed_judge: bool = False) -> list[dict[str, str]]:
    """Add or update the rows of ``runs`` in the results folder's two CSVs; returns the new rows.
    A partial run is refused unless ``allow_partial``; then its rows say why they are partial.

    ``results_dir`` defaults to :func:`tables.default_results_dir` (a user folder).
    """
    results = Path(results_dir) if results_dir else tables.default_results_dir()
    _read_tables(results)                  # a broken table is refused before any run is scored
    new_rows: list[dict[str, str]] = []
    new_config_rows: list[dict[str, str]] = []
    origin: dict[tuple[str, ...], Path] = {}
    checked: list[tuple[Run, list[dict[str, Any]]]] = []
    for given in runs:
        run = load_run(given, model)
        rows, config_rows = run_rows(run, cascade_oracle=cascade_oracle, n_resamples=n_resamples, seed=seed)
        check_valid_rate(run, rows, min_valid_rate)
        checked.append((run, rows))
        if not allow_mixed_judge:
            check_one_snapshot(run, rows)
        for row in _text_rows(rows):
            key = tuple(row[k] for k in tables.KEY)
            if key in origin:
                raise CosaError(f"{origin[key]} and {run.path} both give the row {key}; add them one "
                                "at a time, or name the models apart with --model")
            origin[key] = run.path
            new_rows.append(row)
        new_config_rows.extend(_text_rows(config_rows))
    if not allow_partial:
        for run, rows in checked:
            check_complete(run, rows)
    with tables.results_lock(results):      # read again, merge and replace: one step among writers
        board, by_config = _read_tables(results)
        board = [r for r in board if tuple(r[k] for k in tables.KEY) not in origin] + new_rows
        by_config = [r for r in by_config if tuple(r[k] for k in tables.KEY) not in origin] + new_config_rows
        tables.write_tables({
            results / tables.LEADERBOARD: (tables.LEADERBOARD_COLUMNS, tables.sort_rows(board, tables.KEY)),
            results / tables.BY_CONFIG: (tables.BY_CONFIG_COLUMNS, tables.sort_rows(by_config, tables.BY_CONFIG_KEY)),
        })
    return new_rows


def _read_tables(results: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    return (tables.read_table(results / tables.LEADERBOARD, tables.LEADERBOARD_COLUMNS, tables.KEY),
            tables.read_table(results / tables.BY_CONFIG, tables.BY_CONFIG_COLUMNS, tables.BY_CONFIG_KEY))


def compare_runs(run_a: str | Path, run_b: str | Path, *, cascade_oracle: bool = False,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Paired comparison (A minus B) for each benchmark/variant the two runs share."""
    a = load_run(run_a, need_model=False)
    b = load_run(run_b, need_model=False)
    groups_a = _by_benchmark(a.records)
    groups_b = _by_benchmark(b.records)
    if set(groups_a) != set(groups_b):
        raise CosaError(f"{run_a} holds {', '.join(sorted(groups_a))} but {run_b} holds "
                        f"{', '.join(sorted(groups_b))}; compare runs of the same tasks")
    return [paired_compare(groups_a[k], groups_b[k], cascade_oracle=cascade_oracle,
                           n_resamples=n_resamples, seed=seed) for k in sorted(groups_a)]


def _by_benchmark(records: list[JudgedRecord]) -> dict[str, list[JudgedRecord]]:
    grouped: dict[str, list[JudgedRecord]] = defaultdict(list)
    for record in records:
        grouped[group_key(record)].append(record)
    return grouped


def format_comparison(results: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    """Plain-text report of :func:`compare_runs` results."""
    lines = [f"A = {name_a}", f"B = {name_b}"]
    for res in results:
        pct = round(res["confidence"] * 100)
        lines += [
            "",
            f"{res['benchmark']}/{res['variant']}, judge {res['judge']}: {res['n_pairs']} of "
            f"{res['n_prompts']} prompts validly judged in both runs",
            f"  CoSA-Score on the prompts valid in both: A {res['score_a']:.4f}   B {res['score_b']:.4f}",
            f"  A - B = {res['difference']:+.4f}   {pct}% CI [{res['ci_low']:+.4f}, {res['ci_high']:+.4f}]"
            f"   p = {res['p_value']:.4f}   (paired bootstrap, {res['n_resamples']} resamples, seed {res['seed']})",
        ]
        width = max(len(c) for c in res["configs"])
        for config_id, c in res["configs"].items():
            lines.append(f"    {config_id:<{width}}  A {c['score_a']:+.4f}  B {c['score_b']:+.4f}  "
                         f"A-B {c['difference']:+.4f}  [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]  n={c['n_pairs']}")
    return "\n".join(lines)
