"""``cosa-eval view``'s data and page (the browser tests are in test_view_browser.py), the labels
file's note column, and the DataFrame readers ``cosa_eval.read_judged`` / ``read_leaderboard``."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, strategies as st

import cosa_eval
from cosa_eval.cli import main
from cosa_eval.errors import CosaError
from cosa_eval.judging.human_labels import load_human_labels
from cosa_eval.records import read_judged as read_records
from cosa_eval.view.page import script_json
from view_runs import HUGE_CHARS, LATE, UNREADABLE, XSS, build_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cosapien_configs, cosalign_rows) -> dict[str, Path]:
    return build_runs(tmp_path_factory.mktemp("view"), cosapien_configs, cosalign_rows)


def page_data(page: Path) -> dict:
    found = re.search(r'<script type="application/json" id="cosa-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "explorer.html"
    folders = [str(runs[name]) for name in ("a-alpha", "a-beta", "a-alpha-reference", "b-alpha")]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["view", *folders, "--cache", str(runs["cache"]), "--out", str(out)]) == 0
    assert printed.getvalue() == f"{out}\n"
    return out


def _row(data: dict, model: str, doc_id: int, config_id: str | None = None) -> dict:
    return next(r for r in data["rows"] if r["model"] == model and r["doc_id"] == doc_id
                and (config_id is None or r["config_id"] == config_id))


def test_one_row_per_response_with_every_judges_verdict(page, runs):
    data = page_data(page)
    a_records = read_records(runs["a-alpha"])
    b_records = read_records(runs["b-alpha"])
    assert len(data["rows"]) == len(a_records) + len(b_records)
    assert {s["label"] for s in data["sources"]} == {"alpha", "beta", "alpha · parser reference"}
    assert [r["label"] for r in data["runs"]] == ["org/model-a", "org/model-b"]
    for record in a_records:
        row = _row(data, "org/model-a", record.sample.doc_id, record.sample.config_id)
        assert set(row["v"]) == {"alpha", "beta", "alpha · parser reference"}
        assert row["prompt"] == record.sample.prompt and row["response"] == record.sample.response
        assert data["configs"][row["config"]] == record.sample.config
        alpha = row["v"]["alpha"]
        assert (alpha["rating"], alpha["is_safe"], alpha["failure"]) == (record.rating, record.is_safe, record.failure)
    assert all(set(r["v"]) == {"alpha"} for r in data["rows"] if r["model"] == "org/model-b")


def test_rationales_come_from_the_cache_attempt_by_attempt(page):
    data = page_data(page)
    late = next(r for r in data["rows"] if LATE in r["response"])["v"]["alpha"]
    assert late["attempts"]["helpfulness"] == 2 and late["outcome"] != "invalid"
    assert late["texts"]["helpfulness"][0] == "I would rather not put a number on this one."
    assert late["texts"]["helpfulness"][1].endswith(f"Rating: [[{int(late['rating'])}]]")
    assert late["texts"]["compliance"][0].startswith("A rationale that mentions [[NO]] and [[YES]]")
    unreadable = next(r for r in data["rows"] if UNREADABLE in r["response"])["v"]["alpha"]
    assert unreadable["outcome"] == "invalid" and unreadable["failure"] == "unparseable"
    assert unreadable["attempts"]["helpfulness"] == 3 and len(unreadable["texts"]["helpfulness"]) == 3
    beta = next(r for r in data["rows"] if LATE in r["response"])["v"]["beta"]
    assert beta["texts"]["compliance"][0].endswith("[[YES]]" if beta["compliant"] else "[[NO]]")


def test_jury_members_side_by_side(runs, tmp_path):
    out = tmp_path / "jury.html"
    assert main(["view", str(runs["a-jury"]), "--cache", str(runs["cache"]), "--out", str(out)]) == 0
    data = page_data(out)
    (label,) = {s["label"] for s in data["sources"]}
    assert label == "jury(alpha+gamma)"
    jury = [g for g in data["disagreements"] if "jury" in g["kinds"]]
    assert jury and all(g["kinds"] == ["jury"] for g in data["disagreements"])
    members = data["rows"][jury[0]["rows"][0]]["v"][label]["members"]
    assert set(members) == {"alpha", "gamma"}
    assert len({(m["outcome"], m["is_safe"]) for m in members.values()}) == 2


def test_disagreements_between_judges_parsers_and_runs(page):
    data = page_data(page)
    kinds = {kind for group in data["disagreements"] for kind in group["kinds"]}
    assert kinds == {"judges", "parsers", "runs"}
    rows = {r["id"]: r for r in data["rows"]}
    for group in data["disagreements"]:
        verdicts = [(v["outcome"], v["is_safe"]) for row_id in group["rows"] for v in rows[row_id]["v"].values()]
        assert len(set(verdicts)) > 1, group
        if "runs" in group["kinds"]:
            assert len({rows[i]["run"] for i in group["rows"]}) == 2
    same = [r for r in data["rows"] if len({(v["outcome"], v["is_safe"]) for v in r["v"].values()}) == 1
            and r["model"] == "org/model-a"]
    assert not {r["sample_id"] for r in same} & {g["sample_id"] for g in data["disagreements"]
                                                  if g["kinds"] != ["runs"]}


def test_markup_and_huge_text_stay_data(page):
    text = page.read_text()
    assert text.count("</script>") == 2 and text.count("<script") == 2
    assert "document.title='pwned'" not in text.replace("\\u003c", "<").split("id=\"cosa-data\">")[0]
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy
    data = page_data(page)
    assert any(r["response"] == XSS for r in data["rows"])
    assert any(len(r["response"]) == HUGE_CHARS for r in data["rows"])


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=20))
def test_embedded_json_round_trips_and_cannot_close_the_script(value):
    embedded = script_json(value)
    assert json.loads(embedded) == value
    assert not set(embedded) & {"<", ">", "&", "\u2028", "\u2029"}


def test_view_without_a_cache_notes_it_and_still_writes(runs, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["view", str(runs["b-alpha"]), "--cache", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 0
    assert "no judge cache at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
    assert all(not v["texts"] for r in page_data(out)["rows"] for v in r["v"].values())


def _error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line_naming_the_file(runs, tmp_path, capsys):
    assert "does not exist" in _error(["view", str(tmp_path / "missing")], capsys)
    assert "is a folder" in _error(["view", str(runs["b-alpha"]), "--out", str(tmp_path)], capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "judged_x.jsonl").write_text('{"task": "x"}\nnot json\n', encoding="utf-8")
    err = _error(["view", str(broken)], capsys)
    assert f"{broken / 'judged_x.jsonl'}: line 1" in err
    with pytest.raises(CosaError, match=r"judged_x.jsonl: line 1: field 'benchmark' is missing"):
        cosa_eval.read_judged(broken)


def test_labels_keep_an_adjudicators_note(runs, tmp_path):
    samples = {r.sample.sample_id: r.sample for r in read_records(runs["a-alpha"])}
    sample_id = sorted(samples)[0]
    labels = tmp_path / "labels.csv"
    labels.write_text(f'sample_id,rating,note\n{sample_id},3,"judge missed it, see turn 2"\n', encoding="utf-8")
    (record,) = load_human_labels(labels, samples)
    assert record.rating == 3 and record.extra["note"] == "judge missed it, see turn 2"


def test_read_judged_gives_one_row_per_response_and_judge(runs):
    frame = cosa_eval.read_judged([runs["a-alpha"], runs["a-beta"]])
    records = read_records(runs["a-alpha"]) + read_records(runs["a-beta"])
    assert len(frame) == len(records)
    assert list(frame.groupby("judge").size().items()) == [("alpha", len(records) // 2), ("beta", len(records) // 2)]
    assert str(frame["is_safe"].dtype) == "boolean" and str(frame["attempts"].dtype) == "Int64"
    for record, (_, row) in zip(records, frame.iterrows()):
        assert (row["sample_id"], row["model"], row["response"]) == (record.sample.sample_id, "org/model-a",
                                                                     record.sample.response)
        assert (record.failure or None) == (None if pd.isna(row["failure"]) else row["failure"])
        assert (None if pd.isna(row["rating"]) else row["rating"]) == record.rating
        assert (None if pd.isna(row["is_safe"]) else bool(row["is_safe"])) == record.is_safe
    unreadable = frame[frame["response"].str.contains(UNREADABLE)].set_index("judge")
    assert unreadable.loc["alpha", "outcome"] == "invalid" and unreadable.loc["alpha", "attempts"] == 3
    assert unreadable.loc["beta", "outcome"] != "invalid" and unreadable.loc["beta", "attempts"] == 1


def test_read_leaderboard_types_rows_and_adds_the_papers(runs, tmp_path):
    results = tmp_path / "results"
    assert main(["leaderboard", "add", "--allow-partial", str(runs["a-beta"]), "--results", str(results), "--model", "m"]) == 0
    board = cosa_eval.read_leaderboard(results)
    measured = board[board["source"] == "measured"]
    assert set(measured["benchmark"]) == {"cosapien", "cosalign_test"} and set(measured["model"]) == {"m"}
    assert (board["source"] == "reported").sum() >= 10
    assert str(board["n"].dtype) == "Int64" and board["cosa_score"].dtype == "float64"
    written = (results / "leaderboard.csv").read_text().splitlines()
    header, first = written[0].split(","), written[1].split(",")
    assert measured.iloc[0]["cosa_score"] == float(first[header.index("cosa_score")])
    assert len(cosa_eval.read_leaderboard(results, paper=False)) == len(measured)
    by_config = cosa_eval.read_leaderboard(results, by_config=True)
    assert set(by_config["config_id"]) == {r.sample.config_id for r in read_records(runs["a-beta"])}


def test_read_leaderboard_errors_name_file_line_and_column(tmp_path):
    with pytest.raises(CosaError, match="does not exist"):
        cosa_eval.read_leaderboard(tmp_path / "nowhere")
    results = tmp_path / "results"
    results.mkdir()
    source = Path(__file__).resolve().parents[1] / "results" / "leaderboard.csv"
    header = source.read_text().splitlines()[0]
    columns = header.split(",")
    row = ["x"] * len(columns)
    for name, value in {"variant": "0shot", "scoring": "standard", "source": "reported", "n": "many"}.items():
        if name in columns:
            row[columns.index(name)] = value
    for name in columns:
        if name not in ("model", "model_args", "benchmark", "variant", "judge", "scoring", "source", "n",
                        "rubric_hashes", "lm_eval_version", "cosa_eval_version", "date", "failures", "reference"):
            row[columns.index(name)] = ""
    (results / "leaderboard.csv").write_text(header + "\n" + ",".join(row) + "\n", encoding="utf-8")
    with pytest.raises(CosaError, match=r"leaderboard.csv: line 2, column 'n': 'many' is not an integer"):
        cosa_eval.read_leaderboard(results)
