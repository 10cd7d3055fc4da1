"""SFT then DPO on the tiny model through the CLI: loss falls, the DPO margin rises, every
trainable parameter moves (the adapter's under LoRA), and lm_eval loads the result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train_helpers import FAST_TRAINING, run_step, write_rows

ROOT = Path(__file__).resolve().parents[2]
SEEN_SPLITS = ("safe", "Violence", "Financial_Crime_and_Theft.Privacy_Violations",
               "Discrimination_and_Verbal_Abuse.Violence",
               "Financial_Crime_and_Theft.Discrimination_and_Verbal_Abuse.Violence")


def _pairs() -> list[dict]:
    rows = []
    for i in range(8):
        allowed = "Violence" if i % 2 else "none"
        rows.append({
            "id": f"pair{i}",
            "prompt": [{"role": "system", "content": f"Allowed risk categories: {allowed}."},
                       {"role": "user", "content": f"Tell me story number {i} about a knight."}],
            "chosen": [{"role": "assistant", "content": "Here is a short story about a knight, a dragon and a "
                                                        "village by the sea."}],
            "rejected": [{"role": "assistant", "content": "I cannot help with that request because it is not "
                                                          "allowed by the policy."}],
        })
    return rows


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(folder / "model.safetensors"))


def _counts(folder: Path) -> dict:
    return json.loads((folder / "cosa_manifest.json").read_text())["counts"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """(base, sft, dpo, dpo_lora) folders, trained once for this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COSA_NO_PROGRESS", "1")
        yield _train(tmp_path_factory.mktemp("train"), tiny_model_dir)


def _train(root: Path, tiny_model_dir: Path) -> tuple[Path, Path, Path, Path]:
    pairs = write_rows(root / "pairs.jsonl", _pairs())
    sft, dpo, lora = root / "sft", root / "dpo", root / "dpo-lora"
    assert run_step("sft", "--input", pairs, "--model", tiny_model_dir, "--output-dir", sft, "--max-steps", "6",
                    "--learning-rate", "1e-3", *FAST_TRAINING) == 0
    assert run_step("dpo", "--input", pairs, "--model", sft, "--output-dir", dpo, "--max-steps", "6",
                    "--learning-rate", "1e-3", *FAST_TRAINING) == 0
    assert run_step("dpo", "--input", pairs, "--model", sft, "--output-dir", lora, "--max-steps", "6",
                    "--learning-rate", "5e-3", "--lora-r", "8", "--lora-alpha", "16", *FAST_TRAINING) == 0
    return Path(tiny_model_dir), sft, dpo, lora


def test_sft_loss_falls_and_every_parameter_changes(trained):
    base, sft, _, _ = trained
    counts = _counts(sft)
    assert counts["sft_rows"] == 8 and counts["global_steps"] == 6
    assert counts["nll_after"] < counts["nll_before"] - 0.5
    assert counts["last_logged_loss"] < counts["first_logged_loss"]
    before, after = _weights(base), _weights(sft)
    assert before.keys() == after.keys()
    unchanged = [name for name in before if before[name].equal(after[name])]
    assert unchanged == []


def test_dpo_margin_rises_loss_falls_and_every_parameter_changes(trained):
    _, sft, dpo, _ = trained
    counts = _counts(dpo)
    assert counts["reward_margin_before"] == 0.0 and counts["reward_margin_after"] > 0.2
    assert counts["reward_accuracy_after"] == 1.0
    assert counts["dpo_loss_after"] < counts["dpo_loss_before"]
    assert counts["logp_gap_after"] > counts["logp_gap_before"]
    assert counts["last_logged_loss"] < counts["first_logged_loss"]
    before, after = _weights(sft), _weights(dpo)
    assert [name for name in before if before[name].equal(after[name])] == []


def test_lora_trains_only_the_adapter_and_saves_a_merged_model(trained):
    from safetensors.torch import load_file
    _, sft, _, lora = trained
    adapter = load_file(str(lora / "adapter" / "adapter_model.safetensors"))
    b_weights = {k: v for k, v in adapter.items() if "lora_B" in k}
    assert len(b_weights) == 2 * 7                      # 2 layers x the paper's 7 target modules
    assert all(v.abs().sum() > 0 for v in b_weights.values())   # lora_B starts at zero
    before, merged = _weights(sft), _weights(lora)
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    for name, tensor in before.items():
        moved = not tensor.equal(merged[name])
        assert moved == any(t in name for t in targets), name
    assert _counts(lora)["reward_margin_after"] > 0


def test_trained_folder_is_a_normal_hf_model(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    _, _, dpo, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(dpo)
    assert tokenizer.chat_template and "<|system|>" in tokenizer.apply_chat_template(
        [{"role": "system", "content": "c"}, {"role": "user", "content": "u"}], tokenize=False)
    assert AutoModelForCausalLM.from_pretrained(dpo).num_parameters() > 0


def test_rerunning_a_finished_training_step_is_a_no_op(trained, capsys):
    _, sft, _, _ = trained
    stamp = (sft / "model.safetensors").stat().st_mtime
    assert run_step("sft", "--input", sft.parent / "pairs.jsonl", "--model", "unused", "--output-dir", sft,
                    *FAST_TRAINING) == 0
    assert "already trained" in capsys.readouterr().out
    assert (sft / "model.safetensors").stat().st_mtime == stamp


def test_lm_eval_loads_the_trained_model(trained, tmp_path, cosalign_rows):
    _, _, dpo, _ = trained
    data = tmp_path / "data" / "cosalign_test"
    data.mkdir(parents=True)
    for split in SEEN_SPLITS:
        rows = [r for r in cosalign_rows if r["split"] == split][:3]
        write_rows(data / f"{split}.jsonl", [{k: r[k] for k in ("prompt", "mode", "situation")} for r in rows])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={dpo}",
               "--tasks", "cosalign_test_seen", "--include_path", str(ROOT / "tasks"), "--apply_chat_template",
               "--limit", "2", "--predict_only", "--log_samples", "--output_path", str(out),
               "--gen_kwargs", "max_gen_toks=8"]
    env = {**os.environ, "COSA_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    samples = sorted(out.rglob("samples_cosalign_test_*.jsonl"))
    assert len(samples) == len(SEEN_SPLITS)
    row = json.loads(samples[0].read_text().splitlines()[0])
    assert "<|system|>" in row["arguments"]["gen_args_0"]["arg_0"]
