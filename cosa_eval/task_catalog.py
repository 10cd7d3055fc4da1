"""``cosa-eval tasks``: every cosa-eval task and group, with its document count and data source.

The catalog is read from the task YAMLs themselves (names, group members, ``dataset_kwargs``), so
it lists exactly what ``cosa-eval eval`` can run. lm_eval 0.4 discovers no task plugin (it reads no
entry point and no environment variable for task folders), so plain ``lm_eval ls tasks`` lists only
its built-in tasks; ``--path`` prints the folder to give it as ``--include_path``.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import tasks_dir
from .errors import CosaError

LM_EVAL_NOTE = ("plain `lm_eval ls tasks` lists only lm_eval's built-in tasks: lm_eval 0.4 discovers no task "
                "plugin (no entry point, no environment variable). Run these with `cosa-eval eval --tasks NAME ...`, "
                "or give lm_eval the folder: `lm_eval ls tasks --include_path \"$(cosa-eval tasks --path)\"`.")


@dataclass(frozen=True)
class Entry:
    """One task YAML: a group (with members) or a task (with the config it loads)."""

    name: str
    members: tuple[str, ...] = ()
    benchmark: str = ""
    schema: str = ""
    variant: str = ""
    config_id: str = ""
    packaged: bool = False

    @property
    def kind(self) -> str:
        return "group" if self.members else "task"


class _Loader(yaml.SafeLoader):
    """A safe YAML loader that reads lm_eval's ``!function`` tags as plain text."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def catalog() -> dict[str, Entry]:
    """Every task and group in the cosa-eval task folder, by name."""
    entries: dict[str, Entry] = {}
    for path in sorted((tasks_dir() / "cosa").glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        if not isinstance(data, dict) or not (data.get("group") or isinstance(data.get("task"), str)):
            continue                                 # demos.yaml and other non-task files
        if data.get("group"):
            entries[data["group"]] = Entry(data["group"], members=tuple(data.get("task") or ()))
        else:
            kwargs = data.get("dataset_kwargs") or {}
            entries[data["task"]] = Entry(data["task"], benchmark=str(kwargs.get("benchmark", "")),
                                          schema=str(kwargs.get("schema", "")),
                                          variant=str(kwargs.get("variant", "")),
                                          config_id=str(kwargs.get("config_id", "")),
                                          packaged=bool(kwargs.get("packaged")))
    return entries


def task_names() -> list[str]:
    return sorted(catalog())


class _Counter:
    """Document counts per config from one data source, each split read once; a source that cannot
    be read gives no count and one reason."""

    def __init__(self, data_dir: Path | None) -> None:
        from .data import HUB_IDS
        self.data_dir, self.hub_ids = data_dir, HUB_IDS
        self.counts: dict[tuple[str, str, bool], int | None] = {}
        self.problems: dict[str, str] = {}

    def source(self, entry: Entry) -> str:
        if entry.packaged:
            return "packaged sample (cosa_eval/demo_data)"
        if self.data_dir:
            return f"local {self.data_dir / entry.benchmark}"
        return f"hub {self.hub_ids.get(entry.benchmark, entry.benchmark)}"

    def count(self, entry: Entry) -> int | None:
        from .data import DEMO_DATA_DIR, load_docs
        key = (entry.benchmark, entry.config_id, entry.packaged)
        source = self.source(entry)
        if key not in self.counts:
            if source in self.problems:
                self.counts[key] = None
            else:
                try:
                    folder = DEMO_DATA_DIR if entry.packaged else self.data_dir
                    self.counts[key] = len(load_docs(entry.schema, entry.config_id, data_dir=folder,
                                                     benchmark=entry.benchmark))
                except CosaError as error:
                    self.problems[source] = str(error)
                    self.counts[key] = None
        return self.counts[key]


def _lines(entries: dict[str, Entry], counter: _Counter) -> list[tuple[str, str, str, str]]:
    """(indented name, kind, docs, data source) rows: each top-level group with its members, then
    tasks outside every group."""
    members = {m for entry in entries.values() for m in entry.members}
    rows: list[tuple[str, str, str, str]] = []

    def visit(name: str, depth: int) -> tuple[int | None, set[str]]:
        entry = entries[name]
        position = len(rows)
        rows.append(("", "", "", ""))
        if not entry.members:
            count, sources = counter.count(entry), {counter.source(entry)}
        else:
            counts, sources = [], set()
            for member in entry.members:
                member_count, member_sources = visit(member, depth + 1)
                counts.append(member_count)
                sources |= member_sources
            count = None if None in counts else sum(counts)
        rows[position] = ("  " * depth + name, entry.kind, "?" if count is None else str(count),
                          ", ".join(sorted(sources)))
        return count, sources

    for name in sorted(entries):
        if name not in members:
            visit(name, 0)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosa-eval tasks``."""
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="count the documents of a local data folder (default: $COSA_DATA_DIR, else the hub)")
    parser.add_argument("--path", action="store_true",
                        help="print only the task folder (lm_eval's --include_path) and exit")


def main(args: argparse.Namespace) -> int:
    """Print the catalog as a table, then where the data came from and how lm_eval finds the tasks."""
    from .data import resolve_data_dir
    if args.path:
        print(tasks_dir())
        return 0
    entries = catalog()
    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None and not _hub_reachable():
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read the local hub cache, never wait on a network
    counter = _Counter(data_dir)
    rows = [("task / group", "kind", "docs", "data"), *_lines(entries, counter)]
    width = max(len(row[0]) for row in rows)
    for name, kind, docs, source in rows:
        print(f"{name:<{width}}  {kind:<5}  {docs:>5}  {source}")
    for source, problem in sorted(counter.problems.items()):
        print(f"\n? {source}: {problem}")
    if any(source.startswith("hub ") for source in counter.problems):
        print("\nTo count a local copy instead of the hub: cosa-eval tasks --data-dir DIR (or COSA_DATA_DIR=DIR), "
              "where DIR holds cosapien/<split>.jsonl and cosalign_test/<split>.jsonl (or .parquet).")
    print(f"\n{len(entries)} tasks and groups in {tasks_dir() / 'cosa'}.\n{LM_EVAL_NOTE}")
    return 0


def _hub_reachable() -> bool:
    from .hub import hub_reachable
    return hub_reachable()
