"""Resumable jsonl writing, manifests, step input checks, generation through lm_eval against a local\nserver, load-released and its offline error, the training flags."""
from __future__ import annotations

import json

import pytest

from cosa_eval.errors import CosaError
from cosa_eval.taxonomy import ALL_CATEGORIES
from cosa_eval.train.files import ResumableWriter, read_jsonl, write_manifest
from cosa_eval.train.generate import Sampling
from cosa_eval.train.settings import DPOSettings, SFTSettings, settings_from_args
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


def _chat_generate(tmp_path, server, *flags):
    """``train generate`` through lm_eval's local-chat-completions against the local server."""
    return run_step("generate", "--input", _configs(tmp_path), "--output", tmp_path / "responses.jsonl",
                    "--model", "local-chat-completions", "--model-args",
                    f"model=gen,base_url={server.base_url}/chat/completions,num_concurrent=1,max_retries=2",
                    "--batch-size", "1", *flags)


def test_generate_with_any_lm_eval_model_a_local_server(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)     # a local server needs no key
    with FakeOpenAIServer(answer=lambda messages: f"answer to {messages[-1]['content']}", model="gen") as server:
        assert _chat_generate(tmp_path, server, "--num-responses", "2", "--temperature", "0.7",
                              "--max-new-tokens", "32") == 0
        assert "generate: lm_eval generates" in capsys.readouterr().err          # lm_eval's progress, shown
        rows = read_rows(tmp_path / "responses.jsonl")
        assert [(r["id"], r["response"]) for r in rows[:2]] == [("p0/safe/0#0", "answer to question 0"),
                                                                ("p0/safe/0#1", "answer to question 0")]
        assert len(rows) == 6 and server.completions == 6
        body = server.requests[0].body
        assert body["messages"][0] == {"role": "system", "content": "Allowed: none."}
        assert body["temperature"] == 0.7 and body["max_tokens"] == 32
        assert _chat_generate(tmp_path, server, "--num-responses", "2", "--temperature", "0.7") == 0
        assert server.request_count == 6                     # a re-run sends nothing


def _one_line_error(capsys, argv) -> str:
    from cosa_eval import cli
    with pytest.raises(SystemExit) as info, pytest.MonkeyPatch.context() as patch:
        patch.setenv("COSA_NO_PROGRESS", "1")           # the error alone on stderr, without the steps' bars
        cli.main([str(a) for a in argv])
    assert info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosa-eval: error: ") and "Traceback" not in captured.out
    return captured.out + captured.err


def test_generate_never_shows_the_key_a_server_echoes(tmp_path, monkeypatch, capsys):
    key = "sk-marker-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with FakeOpenAIServer(model="gen", fault_rule=lambda number, body: "401") as server:
        shown = _one_line_error(capsys, [
            "train", "generate", "--input", _configs(tmp_path), "--output", tmp_path / "r.jsonl",
            "--model", "local-chat-completions", "--model-args",
            f"model=gen,base_url={server.base_url}/chat/completions,num_concurrent=1,max_retries=1"])
        assert server.request_count >= 1
    assert "lm_eval failed" in shown and key not in shown
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or key not in path.read_text(errors="replace"), path


def test_generate_is_bounded_when_a_server_returns_no_choices(tmp_path):
    # lm_eval sends one request per (config, repeat), never n, and asks no second time for a reply
    # without choices: its run fails, and the step says so in one line after 3 requests.
    with FakeOpenAIServer(model="gen", fault_rule=lambda number, body: "empty") as server:
        with pytest.raises(CosaError, match=r"lm_eval failed \(exit 1\): ValueError: zip\(\)"):
            _chat_generate(tmp_path, server)
        assert server.request_count == 3
    assert not (tmp_path / "responses.jsonl").exists()


def test_generate_refuses_a_chat_template_that_drops_the_config(tmp_path, capsys):
    from tiny_model import NO_SYSTEM_TEMPLATE, build_tiny_llama
    model = build_tiny_llama(tmp_path / "no-system", chat_template=NO_SYSTEM_TEMPLATE)
    capsys.readouterr()
    shown = _one_line_error(capsys, ["train", "generate", "--input", _configs(tmp_path), "--output",
                                     tmp_path / "r.jsonl", "--model-args", f"pretrained={model}",
                                     "--max-new-tokens", "4"])
    assert "dropped the system message" in shown and not (tmp_path / "r.jsonl").exists()


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


def test_unparseable_labels_are_failures_never_labels_and_the_summary_says_what_a_rerun_does(
        tmp_path, monkeypatch, capsys):
    import re
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
        summary = capsys.readouterr().out
        assert [r["prompt"] for r in read_rows(out)] == ["a duel"]
        manifest = json.loads((tmp_path / "labelled.jsonl.manifest.json").read_text())
        assert manifest["counts"]["failed_unparseable"] == 1
        broken["on"] = False
        assert run_step("label", "--input", prompts, "--output", out, "--judge", judge) == 0
    labelled = [r["prompt"] for r in read_rows(out)]
    assert labelled in (["a duel"], ["a duel", "buy cocaine"])  # never a default label
    # The summary promises a retry exactly when a re-run (with the judge now answering) does retry.
    promises_retry = bool(re.search(r"\bretr(y|ied)\b", summary))
    assert promises_retry == (labelled == ["a duel", "buy cocaine"]), summary


def test_train_cli_imports_no_heavy_package():
    # transformers is imported for its HfArgumentParser (the flags of sft/dpo), never torch or a trainer
    import subprocess
    import sys
    code = ("import sys, argparse; from cosa_eval.train import cli; p = argparse.ArgumentParser(); "
            "cli.add_arguments(p); heavy = {'torch', 'trl', 'peft', 'datasets', 'openai', 'vllm', 'lm_eval'}; "
            "print(sorted(heavy & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_launch_configs_are_valid_accelerate_configs():
    from pathlib import Path
    from accelerate.commands.config.config_args import load_config_from_file
    folder = Path(__file__).resolve().parents[2] / "cosa_eval/train/launch"
    processes = {path.stem: load_config_from_file(str(path)).num_processes for path in folder.glob("*.yaml")}
    assert processes == {"single_gpu": 1, "fsdp_8gpu": 8, "zero3_8gpu": 8}


def _parser():
    import argparse
    from cosa_eval.train import cli as train_cli
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    return parser


@pytest.mark.parametrize("step, cls", [("sft", SFTSettings), ("dpo", DPOSettings)])
def test_training_flags_and_defaults_come_from_the_settings_dataclass(step, cls):
    parsed = _parser().parse_args([step, "--input", "p.jsonl", "--model", "m", "--output-dir", "o"])
    assert settings_from_args(cls, parsed) == cls(model="m", output_dir="o")
    flags = _parser().parse_args([step, "--input", "p", "--model", "m", "--output-dir", "o", "--epochs", "2",
                                  "--batch-size", "3", "--grad-accum", "5", "--no-gradient-checkpointing",
                                  "--lora-targets", "q_proj", "v_proj", "--no-merge-lora", "--bf16", "false"])
    settings = settings_from_args(cls, flags)
    assert (settings.num_train_epochs, settings.per_device_train_batch_size, settings.gradient_accumulation_steps,
            settings.gradient_checkpointing, settings.lora_targets, settings.merge_lora, settings.bf16) == (
        2.0, 3, 5, False, ["q_proj", "v_proj"], False, False)


def test_each_step_has_its_own_learning_rate_and_only_dpo_a_beta():
    assert (SFTSettings("m", "o").learning_rate, DPOSettings("m", "o").learning_rate) == (1e-5, 5e-7)
    assert _parser().parse_args(["dpo", "--input", "p", "--model", "m", "--output-dir", "o", "--beta", "0.2"]).beta == 0.2
    with pytest.raises(SystemExit):
        _parser().parse_args(["sft", "--input", "p", "--model", "m", "--output-dir", "o", "--beta", "0.2"])


def test_dpo_holds_no_reference_copy_unless_asked():
    """The reference's log-probs are computed before training (TRL), so no second model stays in memory."""
    from cosa_eval.train.dpo import dpo_config
    assert dpo_config(DPOSettings("m", "o")).precompute_ref_log_probs is True
    kept = _parser().parse_args(["dpo", "--input", "p", "--model", "m", "--output-dir", "o",
                                 "--precompute-ref-log-probs", "false"])
    assert dpo_config(settings_from_args(DPOSettings, kept)).precompute_ref_log_probs is False


STEP_FILES = [("label", "--output"), ("synthesize", "--output"), ("generate", "--output"), ("judge", "--output"),
              ("pair", "--output"), ("sft", "--output-dir"), ("dpo", "--output-dir")]


@pytest.mark.parametrize("step, output_flag", STEP_FILES)
def test_a_step_never_writes_over_its_own_input(tmp_path, capsys, step, output_flag, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = write_rows(tmp_path / "rows.jsonl", [{"id": "a", "prompt": "p"}])
    before = rows.read_bytes()
    extra = ("--model", "m") if step in ("generate", "sft", "dpo") else ()
    shown = _one_line_error(capsys, ["train", step, "--input", rows, output_flag, "./rows.jsonl", *extra])
    assert "same file" in shown and rows.read_bytes() == before


@pytest.mark.parametrize("content", [b"\xff\xfe\x00{\x00", "{\"prompt\": \"caf\u00e9\"}\n".encode("latin-1")])
def test_non_utf8_training_input_is_a_one_line_error(tmp_path, capsys, content):
    (tmp_path / "in.jsonl").write_bytes(content)
    shown = _one_line_error(capsys, ["train", "synthesize", "--input", tmp_path / "in.jsonl",
                                     "--output", tmp_path / "out.jsonl"])
    assert "in.jsonl: line 1: not UTF-8" in shown and not (tmp_path / "out.jsonl").exists()


def test_non_utf8_output_to_resume_is_a_one_line_error(tmp_path, capsys):
    labelled = write_rows(tmp_path / "labelled.jsonl", [{"id": "a", "prompt": "one", "categories": []}])
    (tmp_path / "out.jsonl").write_bytes(b"\x80\x81\n")
    shown = _one_line_error(capsys, ["train", "synthesize", "--input", labelled, "--output", tmp_path / "out.jsonl"])
    assert "out.jsonl: byte 0 is not UTF-8" in shown


@pytest.mark.parametrize("flags, message", [
    (("--max-prompt-length", "700", "--max-length", "640"), "--max-prompt-length 700"),
    (("--lora-r", "-1"), "--lora-r -1"),
    (("--learning-rate", "0"), "--learning-rate 0"),
])
def test_training_settings_are_validated_before_loading(tmp_path, flags, message):
    with pytest.raises(CosaError, match=message):
        run_step("dpo", "--input", tmp_path / "p.jsonl", "--model", "m", "--output-dir", tmp_path / "o", *flags)


def test_every_command_lets_waiting_openmp_threads_sleep(monkeypatch, capsys):
    """Set before any command runs, so lm_eval, training and the judges it starts inherit it."""
    import os

    from cosa_eval import cli
    monkeypatch.setenv("OMP_WAIT_POLICY", "")            # recorded, so the test leaves the variable as it found it
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert cli.main(["tasks", "--path"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
