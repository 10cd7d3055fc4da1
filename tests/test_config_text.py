from cosa_eval.config_text import PARAPHRASES, render_config
from cosa_eval.taxonomy import DEFINITIONS, RISK_CATEGORIES


def test_at_least_ten_distinct_paraphrases():
    assert len(set(PARAPHRASES)) >= 10
    assert all("{categories}" in p for p in PARAPHRASES)


def test_same_key_same_text_and_keys_spread_over_paraphrases():
    allowed = ["Violence", "Privacy Violations"]
    assert render_config(allowed, "k1") == render_config(list(reversed(allowed)), "k1")
    texts = {render_config(allowed, f"prompt {i}") for i in range(200)}
    # 12 paraphrases x 2 orders: most combinations appear across 200 keys
    assert len(texts) > 15


def test_seed_changes_the_choice():
    keys = [f"p{i}" for i in range(50)]
    assert [render_config(["Violence"], k, seed=1) for k in keys] != [render_config(["Violence"], k, seed=2) for k in keys]


def test_lists_exactly_the_allowed_categories():
    text = render_config(["Violence"], "x")
    assert DEFINITIONS["Violence"] in text
    assert all(DEFINITIONS[c] not in text for c in RISK_CATEGORIES if c != "Violence")
    assert "None." in render_config([], "x")
