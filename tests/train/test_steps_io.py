"""Resumable jsonl writing, manifests, the openai generator, load-released and its offline error."""
from __future__ import annotations

import json

import pytest

from cosa_eval.errors import CosaError
from cosa_eval.taxonomy import ALL_CATEGORIES
from cosa_eval.train.files import ResumableWriter, read_jsonl, write_manifest
from cosa_eval.train.generate import Sampling
from cosa_eval.train.released import HUB_ID, convert_rows, load_split
from openai_server import FakeOpenAIServer
from train_helpers import read_rows, run_step, write_rows


def test_writer_drops_a_cut_line_and_skips_done_ids(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a", "x": 1}\n{"id": "b", "x": 2}\n{"id": "c", "x"')
    with ResumableWriter(path) as writer:
        assert writer.done == {"a", "b"}
        writer.write({"id": "a", "x": 9})
        writer.write({"id": "c", "x": 3, "_row": 4})
    assert read_rows(path) == [{"id": "a", "x": 1}, {"id": "b", "x": 2}, {"id": "c", "x": 3}]


def test_manifest_records_inputs_settings_versions_counts(tmp_path):
    source = write_rows(tmp_path / "in.jsonl", [{"prompt": "p"}])
    path = write_manifest(tmp_path / "out.jsonl", "demo", [source], {"seed": 1}, {"rows": 1})
    manifest = json.loads(path.read_text())
    assert path.name == "out.jsonl.manifest.json"
    assert len(manifest["inputs"][str(source)]) == 64 and manifest["settings"] == {"seed": 1}
    assert {"python", "torch", "transformers", "trl"} <= set(manifest["versions"]) and manifest["counts"] == {"rows": 1}


def test_read_jsonl_errors_name_file_and_row(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "a"}\nnot json\n')
    with pytest.raises(CosaError, match=r"x.jsonl: line 2: not valid JSON"):
        read_jsonl(path)
    with pytest.raises(CosaError, match="does not exist"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_greedy_decoding_with_several_responses_is_refused():
    with pytest.raises(CosaError, match="--num-responses 3 with greedy decoding"):
        Sampling(temperature=0.0, num_responses=3)


def _configs(tmp_path):
    return write_rows(tmp_path / "configs.jsonl", [
        {"id": f"p{i}/safe/0", "config_id": f"p{i}/safe/0", "prompt_id": f"p{i}", "prompt": f"question {i}",
         "config": "Allowed: none.", "allowed": [], "mode": "safe"} for i in range(3)])


def test_openai_generator_against_a_local_server(tmp_path, monkeypatch):
    seen = []

    def answer(messages):
        seen.append(messages)
        return f"answer to {messages[-1]['content']}"

    with FakeOpenAIServer(answer=answer, model="gen") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        out = tmp_path / "responses.jsonl"
        argv = ("generate", "--input", _configs(tmp_path), "--output", out, "--backend", "openai", "--model", "gen",
                "--num-responses", "2", "--temperature", "0.7", "--max-new-tokens", "32")
        assert run_step(*argv) == 0
        rows = read_rows(out)
        assert len(rows) == 6 and rows[0]["response"] == "answer to question 0"
        assert seen[0][0] == {"role": "system", "content": "Allowed: none."}
        assert server.requests[0].body["temperature"] == 0.7 and server.requests[0].body["max_tokens"] == 32
        calls = server.completions
        assert run_step(*argv) == 0 and server.completions == calls


def test_openai_generator_without_a_key_says_how_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(CosaError, match="OPENAI_API_KEY is not set"):
        run_step("generate", "--input", _configs(tmp_path), "--output", tmp_path / "r.jsonl", "--backend", "openai",
                 "--model", "gen")


RELEASED = [{"system_prompt": "You may discuss Violence.", "prompt": "Describe a duel.",
             "chosen_response": "The blades clashed...", "rejected_response": "I can't help with that.",
             "spec_i": "Violence", "spec_j": "Violence", "mode": "exact_match", "chosen_cat": "Violence",
             "rejected_cat": "", "chosen_category_error_score": 0.1, "rejected_category_error_score": 1.0}]


def test_released_rows_become_pair_rows():
    [pair] = convert_rows(RELEASED, "train_bt", "local")
    assert pair["prompt"] == [{"role": "system", "content": "You may discuss Violence."},
                              {"role": "user", "content": "Describe a duel."}]
    assert pair["chosen"] == [{"role": "assistant", "content": "The blades clashed..."}]
    assert pair["rejected"] == [{"role": "assistant", "content": "I can't help with that."}]
    assert (pair["chosen_score"], pair["rejected_score"], pair["mode"]) == (0.1, 1.0, "exact_match")
    assert pair["source"] == f"{HUB_ID}:train_bt" and len(pair["id"]) == 16


def test_released_row_without_a_field_is_a_one_line_error():
    with pytest.raises(CosaError, match=r"local: row 1: field 'chosen_response'"):
        convert_rows([{**RELEASED[0], "chosen_response": None}], "dev", "local")


def test_load_released_offline_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CosaError) as info:
        load_split("dev")
    assert "\n" not in str(info.value) and HUB_ID in str(info.value)
    with pytest.raises(CosaError, match="unknown microsoft/CoSAlign-Train split 'test'"):
        load_split("test")


def test_unparseable_labels_are_failures_never_labels(tmp_path, monkeypatch):
    from train_helpers import write_judge_yaml
    broken = {"on": True}

    def answer(messages):
        text = messages[-1]["content"]
        if broken["on"] and "cocaine" in messages[0]["content"]:
            return "I would rather not say."
        if "Reply with only" in text:
            return '{"Violence": true}'          # still missing categories: unparseable again
        return json.dumps({c: c == "Violence" for c in ALL_CATEGORIES})

    prompts = write_rows(tmp_path / "prompts.jsonl", [{"prompt": "a duel"}, {"prompt": "buy cocaine"}])
    out = tmp_path / "labelled.jsonl"
    with FakeOpenAIServer(answer=answer, model="judge-model") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        monkeypatch.setenv("COSA_CACHE_DIR", str(tmp_path / "cache"))
        judge = write_judge_yaml(tmp_path / "judges")
        assert run_step("label", "--input", prompts, "--output", out, "--judge", judge) == 0
        assert [r["prompt"] for r in read_rows(out)] == ["a duel"]
        manifest = json.loads((tmp_path / "labelled.jsonl.manifest.json").read_text())
        assert manifest["counts"]["failed_unparseable"] == 1
        broken["on"] = False
        calls = server.completions
        assert run_step("label", "--input", prompts, "--output", out, "--judge", judge) == 0
        # the row is redone, but from the cached answers: still a failure, never a default label
        assert [r["prompt"] for r in read_rows(out)] == ["a duel"] and server.completions == calls


def test_train_cli_imports_no_heavy_package():
    import subprocess
    import sys
    code = ("import sys, argparse; from cosa_eval.train import cli; p = argparse.ArgumentParser(); "
            "cli.add_arguments(p); heavy = {'torch', 'transformers', 'trl', 'peft', 'datasets', 'openai'}; "
            "print(sorted(heavy & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_launch_configs_are_valid_accelerate_configs():
    from pathlib import Path
    from accelerate.commands.config.config_args import load_config_from_file
    folder = Path(__file__).resolve().parents[2] / "cosa_eval/train/launch"
    processes = {path.stem: load_config_from_file(str(path)).num_processes for path in folder.glob("*.yaml")}
    assert processes == {"single_gpu": 1, "fsdp_8gpu": 8, "zero3_8gpu": 8}


@pytest.mark.parametrize("flags, message", [
    (("--max-prompt-length", "700", "--max-length", "640"), "--max-prompt-length 700"),
    (("--lora-r", "-1"), "--lora-r -1"),
    (("--learning-rate", "0"), "--learning-rate 0"),
])
def test_training_settings_are_validated_before_loading(tmp_path, flags, message):
    with pytest.raises(CosaError, match=message):
        run_step("dpo", "--input", tmp_path / "p.jsonl", "--model", "m", "--output-dir", tmp_path / "o", *flags)
