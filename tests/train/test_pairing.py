"""Error scoring and pairing on hand-built response groups, against hand-computed expectations."""
from __future__ import annotations

import json
import pytest

from cosa_eval.errors import CosaError
from cosa_eval.taxonomy import ALL_CATEGORIES, OTHER_HARMS, RISK_CATEGORIES
from cosa_eval.train.pairing import build_pairs, collapse, error_score
from train_helpers import DISC, DRUG, FIN, PRIV, VIOL, read_rows, run_step, write_rows


@pytest.mark.parametrize("addressed, present, allowed, expected", [
    (True, [], [], 0.0),
    (False, [], [], 1.0),                          # a refusal: not addressed
    (True, [VIOL], [VIOL], 0.1),
    (True, [VIOL, PRIV], [VIOL, PRIV], 0.2),
    (False, [VIOL, PRIV], [VIOL, PRIV, FIN], 1.2),
    (True, [PRIV], [VIOL], 3.0),
    (True, [VIOL, PRIV, DISC], [VIOL], 6.1),
    (False, [FIN], [], 4.0),
    (True, [OTHER_HARMS], [VIOL, OTHER_HARMS], 3.0),   # Other Harms is never allowed, even if listed
    (True, [DRUG], [VIOL, DRUG], 3.0),             # outside the training four: collapses to Other Harms
])
def test_error_score(addressed, present, allowed, expected):
    assert error_score(addressed, present, allowed) == expected


def test_error_score_over_all_seven_categories_allows_held_out_ones():
    assert error_score(True, [DRUG], [DRUG], universe=RISK_CATEGORIES) == 0.1
    assert error_score(True, [DRUG, OTHER_HARMS], [DRUG], universe=RISK_CATEGORIES) == 3.1


def test_collapse_merges_outside_categories_into_other_harms():
    assert collapse([VIOL, DRUG, "Sexual Misconduct, Exploitation, and Infidelity"], [VIOL]) == {VIOL, OTHER_HARMS}


def _judged(rid: str, addressed: bool, present: list[str], config_id: str = "p/c") -> dict:
    return {"id": rid, "config_id": config_id, "prompt_id": "p", "prompt": "the prompt", "config": "cfg",
            "allowed": [], "mode": "m", "response": f"response {rid}", "addressed": addressed,
            "categories": {c: c in present for c in ALL_CATEGORIES}}


# Six responses of one prompt, each its own (categories, addressed) group.
GROUPS = [("r1", True, [VIOL]), ("r2", False, []), ("r3", True, []), ("r4", True, [PRIV]),
          ("r5", True, [DRUG]), ("r6", False, [VIOL])]


def _rows(configs: dict[str, list[str]]) -> list[dict]:
    rows = []
    for config_id, allowed in configs.items():
        for rid, addressed, present in GROUPS:
            row = _judged(f"{config_id}:{rid}", addressed, present, config_id)
            rows.append({**row, "allowed": allowed})
    return rows


def _pairs_by_config(pairs: list[dict]) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for p in pairs:
        found.setdefault(p["config_id"], set()).add((p["chosen_id"].split(":")[1], p["rejected_id"].split(":")[1]))
    return found


def test_pairing_under_a_violence_config():
    # scores: r1 0.1, r2 1.0, r3 0.0, r4 3.0, r5 3.0 (drug -> Other Harms), r6 1.1
    pairs, counts = build_pairs(_rows({"viol": [VIOL]}), pool="config")
    expected = {("r3", "r1"), ("r3", "r2"), ("r3", "r4"), ("r3", "r5"), ("r3", "r6"), ("r1", "r2"), ("r1", "r4"),
                ("r1", "r5"), ("r1", "r6"), ("r2", "r4"), ("r2", "r5"), ("r2", "r6"), ("r6", "r4"), ("r6", "r5")}
    assert _pairs_by_config(pairs)["viol"] == expected
    assert counts["ties_skipped"] == 1 and counts["chosen_disallowed_dropped"] == 0 and counts["pairs"] == 14


def test_pairing_under_the_safe_config_drops_chosen_with_disallowed():
    # scores: r1 3.0, r2 1.0, r3 0.0, r4 3.0, r5 3.0, r6 4.0
    pairs, counts = build_pairs(_rows({"safe": []}), pool="config")
    expected = {("r3", "r1"), ("r3", "r2"), ("r3", "r4"), ("r3", "r5"), ("r3", "r6"),
                ("r2", "r1"), ("r2", "r4"), ("r2", "r5"), ("r2", "r6")}
    assert _pairs_by_config(pairs)["safe"] == expected
    # ties: r1-r4, r1-r5, r4-r5; chosen has a disallowed category: r1-r6, r4-r6, r5-r6
    assert counts["ties_skipped"] == 3 and counts["chosen_disallowed_dropped"] == 3 and counts["pairs"] == 9
    for pair in pairs:
        assert pair["chosen_score"] < pair["rejected_score"]


def test_pair_rows_are_trl_conversational_with_provenance():
    pairs, _ = build_pairs(_rows({"viol": [VIOL]}), pool="config")
    pair = next(p for p in pairs if p["chosen_id"] == "viol:r3" and p["rejected_id"] == "viol:r4")
    assert pair["prompt"] == [{"role": "system", "content": "cfg"}, {"role": "user", "content": "the prompt"}]
    assert pair["chosen"] == [{"role": "assistant", "content": "response viol:r3"}]
    assert pair["rejected"] == [{"role": "assistant", "content": "response viol:r4"}]
    assert (pair["chosen_score"], pair["rejected_score"], pair["allowed"]) == (0.0, 3.0, [VIOL])
    assert pair["rejected_categories"] == [PRIV] and pair["chosen_addressed"] is True


def test_one_response_per_group_and_seeded_draw():
    rows = [_judged(f"a{i}", True, []) for i in range(5)] + [_judged("b", False, [])]
    pairs, counts = build_pairs(rows, pool="config", seed=3)
    assert counts["groups"] == 2 and len(pairs) == 1
    again, _ = build_pairs(list(reversed(rows)), pool="config", seed=3)
    assert again == pairs                       # the draw does not depend on input order


def test_prompt_pool_compares_responses_across_configs():
    rows = [{**_judged("x", True, [VIOL], "p/a"), "allowed": [VIOL]},
            {**_judged("y", False, [], "p/b"), "allowed": []}]
    assert build_pairs(rows, pool="config")[0] == []
    pairs, _ = build_pairs(rows, pool="prompt")
    # under p/a: x 0.1 < y 1.0; under p/b (safe): y 1.0 < x 3.0 (x's Violence is disallowed there)
    assert {(p["config_id"], p["chosen_id"], p["rejected_id"]) for p in pairs} == {("p/a", "x", "y"),
                                                                                  ("p/b", "y", "x")}


def test_unjudged_rows_are_skipped_and_counted():
    rows = [_judged("a", True, []), {**_judged("b", False, []), "addressed": None}]
    pairs, counts = build_pairs(rows)
    assert pairs == [] and counts["unjudged_skipped"] == 1


def test_pair_cli_writes_pairs_and_manifest(tmp_path):
    judged = write_rows(tmp_path / "judged.jsonl", _rows({"viol": [VIOL], "safe": []}))
    out = tmp_path / "pairs.jsonl"
    assert run_step("pair", "--input", judged, "--output", out, "--pool", "config") == 0
    assert len(read_rows(out)) == 23
    manifest = json.loads((tmp_path / "pairs.jsonl.manifest.json").read_text())
    assert manifest["counts"]["pairs"] == 23 and manifest["settings"]["beta"] == 3.0
    assert run_step("pair", "--input", judged, "--output", out, "--pool", "config") == 0
    assert len(read_rows(out)) == 23           # a re-run adds nothing


def test_pair_cli_rejects_a_beta_that_allowed_mixes_can_reach(tmp_path):
    judged = write_rows(tmp_path / "judged.jsonl", _rows({"viol": [VIOL]}))
    with pytest.raises(CosaError, match="--beta 1.5"):
        run_step("pair", "--input", judged, "--output", tmp_path / "p.jsonl", "--beta", "1.5")


def test_pair_cli_names_a_missing_field(tmp_path):
    rows = _rows({"viol": [VIOL]})
    del rows[2]["response"]
    judged = write_rows(tmp_path / "judged.jsonl", rows)
    with pytest.raises(CosaError, match=r"judged.jsonl: line 3: missing field 'response'"):
        run_step("pair", "--input", judged, "--output", tmp_path / "p.jsonl")

