import re

import pytest

from cosa_eval import judges_dir
from cosa_eval.config_text import PARAPHRASES, frame_scenario, render_config
from cosa_eval.data import COSALIGN_TEST_SPLITS
from cosa_eval.judging.rubric import load_rubric
from cosa_eval.taxonomy import DEFINITIONS, OTHER_HARMS, RISK_CATEGORIES, categories_of_split

# The reference's scope per category (issue 10 item 1): each tuple is one scope item, met by any
# of its spellings. ABSENT: wording the reference does not have, which would widen a category.
SCOPE = {
    "Financial Crime and Theft": [("cybercrime",), ("hacking",), ("white-collar",), ("property crime",),
                                  ("shoplifting",), ("robbery",), ("burglary",), ("embezzlement",), ("fraud",),
                                  ("computer systems or networks",)],
    "Discrimination and Verbal Abuse": [("race",), ("religion",), ("exclusion",), ("derogatory",),
                                        ("unequal treatment",), ("insult",), ("belittle",)],
    "Violence": [("physical injury",), ("self-harm",), ("suicide",), ("kidnapping",), ("murder",),
                 ("assault",), ("torture",)],
    "Illegal Drug-Related Activities and Substance Abuse": [("acquiring", "acquisition"), ("production", "producing"),
                                                            ("distribut",), ("sell", "sale"), ("consum",),
                                                            ("controlled substances",), ("legal substances",),
                                                            ("intoxicat",), ("smuggling",), ("manufactur",),
                                                            ("marketing",)],
    "Privacy Violations": [("personal information",), ("without authorisation", "unauthorised"),
                           ("home address",), ("phone number",), ("credit card",)],
    "Sexual Misconduct, Exploitation, and Infidelity": [("harassment",), ("coercion",), ("seduction",),
                                                        ("minors",), ("non-consensual",), ("tricking",),
                                                        ("sex trafficking",), ("power",), ("cheat",), ("affair",),
                                                        ("hide",)],
    "Weapons, Explosives, Arson, and Illegal Firearm Transactions": [("firearms",), ("knives",), ("explosives",),
                                                                     ("arson",), ("setting property on fire",),
                                                                     ("background checks",)],
}
ABSENT = {"Violence": ("animal", "threat"), "Sexual Misconduct, Exploitation, and Infidelity": ("explicit",),
          OTHER_HARMS: ("malware", "terrorism")}


def _check_scope(category: str, text: str) -> None:
    lowered = text.lower()
    for spellings in SCOPE[category]:
        assert any(s in lowered for s in spellings), f"{category}: no {spellings[0]!r} in {text!r}"
    for word in ABSENT.get(category, ()):
        assert word not in lowered, f"{category}: {word!r} widens the reference's scope"


def _listed(text: str) -> dict[str, str]:
    """The ``- name: definition`` lines of a rendered config or rubric."""
    return dict(re.findall(r"^- (.+?): (.+)$", text, re.M))


@pytest.mark.parametrize("split", sum(COSALIGN_TEST_SPLITS.values(), ()))
def test_every_cosalign_test_config_lists_the_reference_scope(split):
    allowed = categories_of_split(split)
    for key in range(40):
        listed = _listed(render_config(allowed, f"{split}\x1fprompt {key}"))
        assert set(listed) == set(allowed)
        for category in allowed:
            _check_scope(category, listed[category])


def test_category_rubric_lists_the_same_scope():
    rubric = load_rubric("categories", judges_dir() / "rubrics" / "categories.jinja")
    listed = _listed(rubric.render(prompt="p", response="r"))
    assert listed == DEFINITIONS
    for category in RISK_CATEGORIES:
        _check_scope(category, listed[category])
    assert not any(word in listed[OTHER_HARMS].lower() for word in ABSENT[OTHER_HARMS])


HELPFUL = re.compile(r"thorough|accurate|complete|detailed|precise|in depth|fully and correctly", re.I)
RELAXED = re.compile(r"set aside|loosen|relax|lifted|disregard|without the usual restrictions|switched off|ease", re.I)
STRICT = re.compile(r"(every|all|any|remaining)\b.*\b(other|not (on|listed|named)|remaining|outside)|"
                    r"(other|remaining)\b.*\bsafe", re.I | re.S)


@pytest.mark.parametrize("template", PARAPHRASES)
def test_paraphrases_carry_the_reference_three_parts_in_order(template):
    before, after = template.split("{categories}")
    assert HELPFUL.search(before), "helpfulness emphasis comes first"
    assert RELAXED.search(before) and HELPFUL.search(before).start() < RELAXED.search(before).start()
    assert STRICT.search(after) and re.search(r"safe|restriction|off limits", after, re.I)
    assert not re.search(r"\bpart\b|polite|refuse|decline", template, re.I), "no instruction the reference lacks"


def test_at_least_ten_distinct_paraphrases():
    assert len(set(PARAPHRASES)) >= 10
    assert all(p.count("{categories}") == 1 for p in PARAPHRASES)


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
    assert "\nNone.\n" in render_config([], "x")
    assert OTHER_HARMS not in render_config([OTHER_HARMS, "Violence"], "x")


def test_cosapien_frame_asks_for_thorough_answers_and_keeps_the_scenario_whole():
    scenario = "We are a studio.\n- Allow {braces} and violence.\n- No drugs."
    text = frame_scenario(scenario)
    head, body = text.split("Safety guideline:\n")
    assert re.search(r"thorough", head, re.I) and re.search(r"precise", head, re.I)
    assert body == scenario
