"""Config synthesis: the four modes' definitions, seeded reproducibility, Other Harms never allowed."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from cosa_eval.config_text import render_config
from cosa_eval.errors import CosaError
from cosa_eval.taxonomy import OTHER_HARMS, RISK_CATEGORIES, TRAINING_CATEGORIES
from cosa_eval.train.synthesize import configs_for_prompt, draw_allowed, parse_per_mode
from train_helpers import DISC, DRUG, FIN, PRIV, VIOL, read_rows, run_step, write_rows

U = TRAINING_CATEGORIES


@pytest.mark.parametrize("prompt_cats", [[VIOL], [VIOL, PRIV], [FIN, DISC, PRIV], [DRUG], [VIOL, OTHER_HARMS]])
def test_modes_follow_their_definitions(prompt_cats):
    inside = set(prompt_cats) & set(U)
    for seed in range(40):
        rng = random.Random(seed)
        assert set(draw_allowed("exact", prompt_cats, U, rng)) == inside
        assert draw_allowed("safe", prompt_cats, U, rng) == ()
        superset = set(draw_allowed("superset", prompt_cats, U, rng))
        assert superset > inside and superset <= set(U)
        not_superset = set(draw_allowed("not-superset", prompt_cats, U, rng))
        assert not_superset <= set(U) and (not inside <= not_superset or inside == set())
        assert OTHER_HARMS not in superset | not_superset


def test_modes_that_cannot_apply_are_skipped():
    rng = random.Random(0)
    assert draw_allowed("superset", list(U), U, rng) is None          # nothing left to add
    assert draw_allowed("not-superset", [], U, rng) is None           # a safe prompt fits every config


def test_configs_are_seeded_per_prompt_and_rendered_with_render_config():
    counts = Counter()
    per_mode = {"exact": 1, "superset": 2, "safe": 1, "not-superset": 2}
    first = configs_for_prompt("p1", "the prompt", [VIOL], U, per_mode, 7, counts)
    again = configs_for_prompt("p1", "the prompt", [VIOL], U, per_mode, 7, Counter())
    other_seed = configs_for_prompt("p1", "the prompt", [VIOL], U, per_mode, 8, Counter())
    assert first == again and first != other_seed
    assert len({tuple(c["allowed"]) for c in first}) == len(first)   # no repeated allowed set
    for config in first:
        assert config["config"] == render_config(config["allowed"], key=config["id"], seed=7)


def test_all_seven_categories_when_asked():
    counts = Counter()
    configs = configs_for_prompt("p", "q", [DRUG], RISK_CATEGORIES, {"exact": 1}, 0, counts)
    assert configs[0]["allowed"] == [DRUG]


def test_synthesize_cli_is_reproducible_and_resumable(tmp_path):
    rows = [{"id": "a", "prompt": "one", "categories": [VIOL]}, {"prompt": "two", "categories": []},
            {"id": "c", "prompt": "three", "categories": [PRIV, FIN]}]
    labelled = write_rows(tmp_path / "labelled.jsonl", rows)
    first, second = tmp_path / "c1.jsonl", tmp_path / "c2.jsonl"
    assert run_step("synthesize", "--input", labelled, "--output", first, "--seed", "5") == 0
    write_rows(tmp_path / "reversed.jsonl", list(reversed(rows)))
    assert run_step("synthesize", "--input", tmp_path / "reversed.jsonl", "--output", second, "--seed", "5") == 0
    by_id = lambda path: {r["id"]: r for r in read_rows(path)}  # noqa: E731
    assert by_id(first) == by_id(second)
    assert run_step("synthesize", "--input", labelled, "--output", first, "--seed", "5") == 0
    assert len(read_rows(first)) == len(by_id(first))


def test_bad_labels_and_modes_are_one_line_errors(tmp_path):
    bad = write_rows(tmp_path / "bad.jsonl", [{"prompt": "x", "categories": ["Violence", "Arson"]}])
    with pytest.raises(CosaError, match=r"bad.jsonl: row 1: unknown categories \['Arson'\]"):
        run_step("synthesize", "--input", bad, "--output", tmp_path / "o.jsonl")
    with pytest.raises(CosaError, match="--per-mode item 'supreset=1'"):
        parse_per_mode("supreset=1")


def test_prompts_pair_would_skip_get_no_config(tmp_path, capsys):
    """A prompt labelled outside --categories can never make a pair: no config, so no response is generated."""
    rows = [{"id": "a", "prompt": "one", "categories": [VIOL]}, {"id": "b", "prompt": "two", "categories": [DRUG]}]
    configs = tmp_path / "configs.jsonl"
    assert run_step("synthesize", "--input", write_rows(tmp_path / "l.jsonl", rows), "--output", configs) == 0
    assert {r["prompt_id"] for r in read_rows(configs)} == {"a"}
    assert "1 prompts labelled outside --categories training skipped" in capsys.readouterr().out
    assert run_step("synthesize", "--input", tmp_path / "l.jsonl", "--output", tmp_path / "all.jsonl",
                    "--categories", "all") == 0
    assert {r["prompt_id"] for r in read_rows(tmp_path / "all.jsonl")} == {"a", "b"}
