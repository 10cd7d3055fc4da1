"""``cosa-eval judge-agreement``: agreement between judges and with human labels.

    cosa-eval judge-agreement judged/gpt-4o judged/llama-70b
    cosa-eval judge-agreement judged/gpt-4o judged/llama-70b --labels human.csv --out agreement/
    cosa-eval judge-agreement judged/gpt-4o --labels human.jsonl --format csv

Each positional argument is one judge's judged_*.jsonl files (or a folder of them). Only light
modules are imported at the top: ``cosa-eval --help`` builds every subcommand's parser.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import CosaError
from ..scoring.bootstrap import DEFAULT_RESAMPLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosa-eval judge-agreement``."""
    parser.add_argument("judged", nargs="+", metavar="JUDGED",
                        help="one judge's judged_*.jsonl files or folder per argument (cosa-eval judge --output)")
    parser.add_argument("--labels", type=Path, metavar="HUMAN.csv|jsonl",
                        help="human labels, one row per document (format: judges/README.md)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write agreement.csv, headline.csv, detection.csv (with --labels), agreement.json and "
                             "agreement.md here")
    parser.add_argument("--format", choices=("md", "csv"), default="md",
                        help="what to print: markdown tables (default) or the agreement CSV")
    parser.add_argument("--by-config", action="store_true",
                        help="print per-config rows too (the CSV always has them)")
    parser.add_argument("--n-resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples for the CoSA-Score difference (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub markdown table of the given columns."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV of the given columns (empty cells for None)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: ("" if row.get(c) is None else row.get(c)) for c in columns} for row in rows)
    return buffer.getvalue()


def _confusions(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Overall confusion matrices of is_safe and rating, rows = judge A, columns = judge B."""
    parts = []
    for row in rows:
        if row["config"] != "overall" or row["label"] not in ("is_safe", "rating") or not row["n"]:
            continue
        levels = [str(level) for level in row["levels"]]
        head = f"{row['judge_a']} \\ {row['judge_b']}"
        body = [{head: level, **dict(zip(levels, counts))} for level, counts in zip(levels, row["confusion"])]
        parts.append(f"{row['benchmark']} {row['label']}:\n\n" + markdown_table(body, [head, *levels]))
    return parts


def render_markdown(report: dict[str, Any], by_config: bool = False) -> str:
    """The report as markdown: agreement, confusion matrices, headline effect, unsafe detection."""
    from ..scoring.agreement import DETECTION_COLUMNS, HEADLINE_COLUMNS
    rows = [r for r in report["rows"] if by_config or r["config"] == "overall"]
    columns = ["judge_a", "judge_b", "benchmark", "label", "config", "n", "failed_a", "failed_b", "missing",
               "agreement", "kappa", "weighted_kappa", "spearman"]
    notes = sorted({r["note"] for r in report["rows"] if r.get("note")})
    parts = ["## Agreement", markdown_table(rows, columns), *[f"Ratings: {note}." for note in notes],
             "## Confusion matrices", *_confusions(report["rows"]),
             "## CoSA-Score under each judge (paired bootstrap CI of A - B)",
             markdown_table(report["headline"], HEADLINE_COLUMNS)]
    if report["detection"]:
        parts += ["## Detecting responses humans labelled unsafe",
                  markdown_table(report["detection"], DETECTION_COLUMNS)]
    return "\n\n".join(parts) + "\n"


def load_report_inputs(judged: Sequence[str], labels: Path | None) -> tuple[list, Any]:
    """Judge sets (one per argument) and the human labels as a judge set (or None)."""
    from ..scoring.agreement import make_judge_set
    from .human_labels import HUMAN, load_human_labels
    from ..records import read_judged
    sets = [make_judge_set(read_judged(path), source=str(path)) for path in judged]
    human = None
    if labels is not None:
        samples = {sid: record.sample for sid, record in sets[0].records.items()}
        human = make_judge_set(load_human_labels(labels, samples), source=str(labels), name=HUMAN)
    return sets, human


def _write(out: Path, report: dict[str, Any], markdown: str) -> None:
    from ..scoring.agreement import DETECTION_COLUMNS, HEADLINE_COLUMNS, ROW_COLUMNS
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement.csv").write_text(csv_text(report["rows"], ROW_COLUMNS), encoding="utf-8")
    (out / "headline.csv").write_text(csv_text(report["headline"], HEADLINE_COLUMNS), encoding="utf-8")
    if report["detection"]:
        (out / "detection.csv").write_text(csv_text(report["detection"], DETECTION_COLUMNS), encoding="utf-8")
    (out / "agreement.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "agreement.md").write_text(markdown, encoding="utf-8")


def main(args: argparse.Namespace) -> int:
    """Compare the judges, print markdown (or CSV), and write the tables under --out."""
    from ..scoring.agreement import ROW_COLUMNS, agreement_report
    if len(args.judged) < 2 and args.labels is None:
        raise CosaError("give two judged runs to compare, or one with --labels HUMAN.csv")
    if args.n_resamples < 10:
        raise CosaError(f"--n-resamples is {args.n_resamples}; use at least 10 (1,000 is usual)")
    sets, human = load_report_inputs(args.judged, args.labels)
    report = agreement_report(sets, human, n_resamples=args.n_resamples, seed=args.seed)
    markdown = render_markdown(report, by_config=args.by_config)
    print(markdown if args.format == "md" else csv_text(report["rows"], ROW_COLUMNS), end="")
    if args.out:
        _write(args.out, report, markdown)
        print(f"wrote {args.out}/agreement.csv, headline.csv, agreement.json, agreement.md", file=sys.stderr)
    return 0
