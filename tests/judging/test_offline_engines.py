"""Offline engines, one format: --export-requests writes OpenAI batch input, --import-answers reads
batch output into the cache (all or nothing), and a normal re-run judges from the cache."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from judging_helpers import cosalign_samples, cosapien_samples, write_judge, write_samples_file
from cosa_eval.cli import main
from cosa_eval.errors import CosaError
from cosa_eval.judging.offline import read_answers


def cli(*argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return int(stop.code)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("judged_*.jsonl"))} | \
        {"scores.json": (folder / "scores.json").read_bytes()}


def rows(cache: Path) -> int:
    if not cache.exists():
        return 0
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_lines(path: Path, items: list) -> Path:
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items),
                    encoding="utf-8")
    return path


@pytest.fixture
def run_folder(tmp_path, cosalign_rows, cosapien_configs) -> Path:
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::200] + cosapien_samples(cosapien_configs)[::2]
    write_samples_file(tmp_path / "run", samples)
    return tmp_path / "run"


@pytest.mark.parametrize("verdict_format", ["free", "logprobs"])
def test_export_answer_elsewhere_import_gives_the_online_judged_files(
        judge_server, tmp_path, run_folder, verdict_format):
    judge = write_judge(tmp_path / "judges", verdict_format=verdict_format)
    online, offline = tmp_path / "online.sqlite", tmp_path / "offline.sqlite"
    assert cli("judge", run_folder, "--judge", judge, "--cache", online, "--output", tmp_path / "a",
               "--no-progress") == 0
    sent = [r.body for r in judge_server.requests]
    judge_server.reset()
    rounds = 0
    while True:                              # first asks, then the re-asks of unreadable answers
        requests = tmp_path / f"requests-{rounds}.jsonl"
        assert cli("judge", run_folder, "--judge", judge, "--cache", offline, "--export-requests", requests) == 0
        exported = lines(requests)
        if not exported:
            break
        if rounds == 0:
            assert all(set(line) == {"custom_id", "method", "url", "body"} and line["method"] == "POST"
                       and line["url"] == "/v1/chat/completions" for line in exported)
            assert sorted(json.dumps(line["body"], sort_keys=True) for line in exported) == \
                sorted(json.dumps(body, sort_keys=True) for body in sent[:len(exported)])
        answers = write_lines(tmp_path / f"answers-{rounds}.jsonl", judge_server.answer_offline(exported))
        assert cli("judge", run_folder, "--judge", judge, "--cache", offline, "--import-answers", answers) == 0
        rounds += 1
    assert rounds >= 1 and judge_server.request_count == 0
    assert cli("judge", run_folder, "--judge", judge, "--cache", offline, "--output", tmp_path / "b",
               "--no-progress") == 0
    assert judge_server.request_count == 0            # every answer came from the imported files
    assert tree(tmp_path / "b") == tree(tmp_path / "a")


def _exported(judge_server, tmp_path, run_folder) -> tuple[Path, Path, list[dict]]:
    judge, cache = write_judge(tmp_path / "judges"), tmp_path / "cache.sqlite"
    requests = tmp_path / "requests.jsonl"
    assert cli("judge", run_folder, "--judge", judge, "--cache", cache, "--export-requests", requests) == 0
    return judge, cache, judge_server.answer_offline(lines(requests))


CORRUPTIONS = {
    "malformed": (lambda good: "{\"custom_id\": ", "not valid JSON"),
    "unknown": (lambda good: {**good, "custom_id": "f" * 64}, "unknown custom_id"),
    "mismatch": (lambda good: {**good, "response": {**good["response"], "body": {
        **good["response"]["body"], "model": "another-model"}}}, "does not match"),
    "duplicate": (lambda good: good, "duplicate custom_id"),
    "shape": (lambda good: {**good, "response": "fine"}, "field 'response'"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_bad_import_file_is_one_line_naming_the_line_and_imports_nothing(
        judge_server, tmp_path, run_folder, capsys, case):
    judge, cache, answers = _exported(judge_server, tmp_path, run_folder)
    before = rows(cache)
    corrupt, message = CORRUPTIONS[case]
    bad = answers[:3] + [corrupt(answers[1] if case == "duplicate" else answers[3])] + answers[4:]
    path = write_lines(tmp_path / "answers.jsonl", bad)
    capsys.readouterr()
    assert cli("judge", run_folder, "--judge", judge, "--cache", cache, "--import-answers", path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cosa-eval: error: {path}: line 4") and message in err and err.count("\n") == 1
    assert rows(cache) == before


def test_import_twice_is_harmless_and_error_lines_stay_pending(judge_server, tmp_path, run_folder, capsys):
    judge, cache, answers = _exported(judge_server, tmp_path, run_folder)
    failed = {**answers[0], "response": {"status_code": 500, "body": {"error": {"message": "boom"}}}}
    path = write_lines(tmp_path / "answers.jsonl", [failed, *answers[1:]])
    assert cli("judge", run_folder, "--judge", judge, "--cache", cache, "--import-answers", path) == 0
    assert "1 failed" in capsys.readouterr().err and rows(cache) == len(answers) - 1
    assert cli("judge", run_folder, "--judge", judge, "--cache", cache, "--import-answers", path) == 0
    assert rows(cache) == len(answers) - 1
    again = tmp_path / "again.jsonl"
    assert cli("judge", run_folder, "--judge", judge, "--cache", cache, "--export-requests", again) == 0
    assert [line["custom_id"] for line in lines(again)] == [answers[0]["custom_id"]]


# --- the reader alone ---------------------------------------------------------------------------

BODIES = {f"{i:064x}": {"model": "judge-model", "messages": [{"role": "user", "content": f"q{i}"}]}
          for i in range(6)}


def _good(key: str) -> dict:
    return {"id": f"batch_req_{key[-2:]}", "custom_id": key, "error": None,
            "response": {"status_code": 200, "body": {"model": "judge-model-2024-08-06", "choices": []}}}


_SHAPES = [lambda g: {**g, "custom_id": 7}, lambda g: {**g, "response": None, "error": None},
           lambda g: {**g, "response": {**g["response"], "status_code": "200"}},
           lambda g: {**g, "response": {**g["response"], "body": []}}, lambda g: []]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(sorted(BODIES)), where=st.integers(0, 5), data=st.data())
def test_reader_reads_a_good_file_and_names_the_one_bad_line(tmp_path, order, where, data):
    good = [_good(key) for key in order]
    path = write_lines(tmp_path / "answers.jsonl", good)
    assert sorted(answer[0] for answer in read_answers(path, BODIES, set())) == sorted(BODIES)
    assert read_answers(path, {}, set(BODIES)) == []          # answered since: nothing new, no error
    kind = data.draw(st.sampled_from(["text", "unknown", "duplicate", "mismatch", "shape"]))
    if kind == "text":
        bad: object = data.draw(st.text(min_size=1).filter(lambda t: "\n" not in t and "\r" not in t and t.strip()
                                                            and not _is_object(t)))
    elif kind == "unknown":
        bad = _good(data.draw(st.text("0123456789abcdef", min_size=1).filter(lambda k: k not in BODIES)))
    elif kind == "duplicate":
        bad = good[data.draw(st.integers(0, len(good) - 1)) if where else 0]
    elif kind == "mismatch":
        bad = {**good[where], "response": {"status_code": 200, "body": {"model": data.draw(
            st.text(min_size=1).filter(lambda m: not m.startswith("judge-model"))), "choices": []}}}
    else:
        bad = data.draw(st.sampled_from(_SHAPES))(good[where])
    mixed = good[:where] + [bad] + good[where + 1:] if kind != "duplicate" else good + [bad]
    number = (where if kind != "duplicate" else len(good)) + 1
    write_lines(path, mixed)
    with pytest.raises(CosaError) as error:
        read_answers(path, BODIES, set())
    assert f"{path}: line {number}:" in str(error.value) and "\n" not in str(error.value)


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
