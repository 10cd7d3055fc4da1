"""The whole CoSAlign pipeline through its CLI steps: 30 prompts, the tiny model as generator
(through lm_eval), the local OpenAI-compatible server as judge; then re-runs and an interrupted step resume."""
from __future__ import annotations

import json

from cosa_eval.taxonomy import OTHER_HARMS, TRAINING_CATEGORIES
from cosa_eval.train.pairing import has_disallowed
from train_helpers import LABELS, PROMPTS, judge_env, read_rows, run_step, write_rows  # noqa: F401


def _manifest(path):
    return json.loads(path.with_name(path.name + ".manifest.json").read_text())


def _run_pipeline(tmp_path, judge_yaml, model):
    files = {name: tmp_path / f"{name}.jsonl" for name in ("prompts", "labelled", "configs", "responses",
                                                           "judged", "pairs")}
    write_rows(files["prompts"], [{"prompt": p, "source": "test"} for p, _ in PROMPTS])
    judge = ("--judge", judge_yaml)
    steps = [
        ("label", "--input", files["prompts"], "--output", files["labelled"], *judge),
        ("synthesize", "--input", files["labelled"], "--output", files["configs"],
         "--per-mode", "exact=1,superset=1,safe=1,not-superset=1"),
        ("generate", "--input", files["configs"], "--output", files["responses"], "--model", "hf",
         "--model-args", f"pretrained={model}", "--num-responses", "2", "--temperature", "1", "--top-p", "0.95", "--max-new-tokens", "8",
         "--batch-size", "32"),
        ("judge", "--input", files["responses"], "--output", files["judged"], *judge),
        ("pair", "--input", files["judged"], "--output", files["pairs"]),
    ]
    for argv in steps:
        assert run_step(*argv) == 0
    return files, steps


def test_pipeline_end_to_end_resumable(tmp_path, judge_env, tiny_model_dir):
    server, judge_yaml = judge_env
    files, steps = _run_pipeline(tmp_path, judge_yaml, tiny_model_dir)

    labelled = read_rows(files["labelled"])
    assert {r["prompt"]: set(r["categories"]) for r in labelled} == {p: set(c) for p, c in LABELS.items()}
    configs = read_rows(files["configs"])
    assert all(OTHER_HARMS not in c["allowed"] and set(c["allowed"]) <= set(TRAINING_CATEGORIES) for c in configs)
    assert {c["mode"] for c in configs} == {"exact", "superset", "safe", "not-superset"}
    responses = read_rows(files["responses"])
    assert len(responses) == 2 * len(configs)
    judged = read_rows(files["judged"])
    assert len(judged) == len(responses)
    assert {type(r["addressed"]) for r in judged} == {bool} and all(len(r["categories"]) == 8 for r in judged)

    pairs = read_rows(files["pairs"])
    assert len(pairs) > 20
    for pair in pairs:
        assert pair["chosen_score"] < pair["rejected_score"]
        assert not has_disallowed(pair["chosen_categories"], pair["allowed"], TRAINING_CATEGORIES)
        system, user = pair["prompt"]
        assert system["role"] == "system" and system["content"].strip() and user["role"] == "user"
        assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
    counts = _manifest(files["pairs"])["counts"]
    assert counts["pairs"] == len(pairs) and counts["ties_skipped"] > 0 and counts["chosen_disallowed_dropped"] > 0
    manifest = _manifest(files["judged"])
    assert set(manifest["inputs"]) == {str(files["responses"])} and manifest["versions"]["trl"]
    assert "sk-test" not in "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())

    # A second run of every step does nothing new and asks the judge nothing.
    calls = server.completions
    snapshot = {name: path.read_text() for name, path in files.items()}
    for argv in steps:
        assert run_step(*argv) == 0
    assert server.completions == calls
    assert {name: path.read_text() for name, path in files.items()} == snapshot
    assert _manifest(files["responses"])["counts"]["written_this_run"] == 0

    # An interrupted generate (last rows lost, one line cut short) continues where it stopped.
    lines = files["responses"].read_text().splitlines(keepends=True)
    files["responses"].write_text("".join(lines[:-5]) + lines[-5][:40])
    assert run_step(*steps[2]) == 0
    assert len(read_rows(files["responses"])) == len(responses)
    assert _manifest(files["responses"])["counts"]["written_this_run"] == 5


def test_top_level_cli_runs_train_steps_and_prints_one_line_errors(tmp_path, capsys):
    import pytest
    from cosa_eval import cli
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "pair", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "p.jsonl")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.jsonl does not exist" in err[0]
