"""Task identity is declared by the task's docs, not guessed: a user's own benchmark gets its own rows."""
from __future__ import annotations

import csv
import json

import pytest

from scoring_harness import leaderboard
from scoring_fixtures import cosapien_run, write_run
from cosa_eval.errors import CosaError
from cosa_eval.samples import sample_from_row


def _row(**doc_overrides):
    doc = {"benchmark": "acme", "schema": "cosapien", "variant": "0shot", "config_id": "helpdesk",
           "config_group": "acme", "prompt": "How do I reset a router?", "system": "Be a helpdesk.",
           "type": "allowed", **doc_overrides}
    return {"doc_id": 0, "doc": doc, "filtered_resps": ["Unplug it."]}


def test_identity_comes_from_the_doc_not_the_task_name():
    sample = sample_from_row("acme_5shot_helpdesk", _row(), "f: line 1")     # the name says 5shot; the doc says 0shot
    assert (sample.benchmark, sample.schema, sample.variant, sample.config_id) == ("acme", "cosapien", "0shot", "helpdesk")
    assert sample.sample_id == "acme/0shot/helpdesk/0"


@pytest.mark.parametrize("override, message", [
    ({"schema": "acme"}, "doc.schema is 'acme', not one of cosapien, cosalign_test"),
    ({"variant": None}, "doc.variant is 'None', not one of 0shot, 5shot"),
    ({"prompt": None}, "doc.prompt is 'None', not a non-empty string"),
    ({"prompt": ["a", "b"]}, "doc.prompt is \"['a', 'b']\", not a non-empty string"),
    ({"config_id": None}, "doc.config_id is 'None'"),
])
def test_undeclared_or_malformed_identity_is_one_line(override, message):
    with pytest.raises(CosaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sample_from_row("acme_helpdesk", _row(**override), "f: line 1")


def test_a_new_benchmark_in_the_readme_shape_gets_its_own_leaderboard_rows(tmp_path):
    """``acme`` (cosapien schema) beside real cosapien configs: two benchmarks, never merged."""
    acme = cosapien_run(benchmark="acme", schema="cosapien")
    run = write_run(tmp_path / "run", cosapien_run() + acme, "model-a")
    results = tmp_path / "results"
    assert leaderboard("add", run, "--results", results, "--min-valid-rate", "0", "--allow-partial") == 0
    with (results / "leaderboard.csv").open(encoding="utf-8", newline="") as handle:
        rows = {r["benchmark"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"acme", "cosapien"}
    assert rows["acme"]["cosa_score"] == rows["cosapien"]["cosa_score"] == "0.4"      # same verdicts, own rows
    assert rows["acme"]["n"] == "6"
    judged = [json.loads(line) for line in (run / "judged_acme_0shot.jsonl").read_text().splitlines()]
    assert {r["schema"] for r in judged} == {"cosapien"} and judged[0]["sample_id"].startswith("acme/")
