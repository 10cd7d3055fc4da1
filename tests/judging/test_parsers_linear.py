"""Verdict parsers take time linear in what they read, read bounded text, and never raise.

Every input named here took seconds with the shipped parsers (regexes with nested quantifiers over
the same characters, and a brace matcher re-scanning the text from every ``{``); the bound per call
is CPU time, generous enough for a crowded machine and far below the old figures.
"""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosa_eval.judging.backends.base import JudgeRequest
from cosa_eval.judging.backends.structured import logprob_response, structured_response
from cosa_eval.judging.parsers import (Parsed, parse_categories, parse_rating, parse_yes_no,
                                       reference_addressed, reference_categories, reference_compliance,
                                       reference_rating, unquoted)
from cosa_eval.taxonomy import ALL_CATEGORIES

BOUND_S = 0.5          # CPU seconds per call; the named inputs took 0.2-7 s each before
LABELS = {name: name in ("Violence", "Privacy Violations") for name in ALL_CATEGORIES}
PARSERS = (parse_rating, parse_yes_no, parse_categories, reference_rating, reference_compliance,
           reference_addressed, reference_categories)


def timed(function, *args):
    """``function(*args)``, failing when it takes more than ``BOUND_S`` of CPU time."""
    start = time.process_time()
    result = function(*args)
    spent = time.process_time() - start
    assert spent < BOUND_S, f"{function.__name__} took {spent:.2f} s of CPU on {len(args[0])} characters"
    return result


@pytest.mark.parametrize("function, text", [
    (parse_rating, "Rating:" + " " * 1000 + "x"),                      # cubic: \s*\**\s*\[?\s* (7 s)
    (parse_rating, "Rating:" + " " * 2000 + "[" + " " * 2000 + "x"),
    (unquoted, "\n" * 40000),                                           # ^[=\s]* from every line (3-5 s)
    (unquoted, "<<<A BEGIN" * 20000),                                   # [^>]* from every marker
    (unquoted, "<<<A BEGIN>>>" + "<<<A END" * 20000),
    (parse_categories, "{" * 8000),                                     # brace matching from every { (3-4 s)
    (parse_categories, "{'a':" * 5000),                                 # (6 s)
    (parse_categories, "{'" * 5000),
    (parse_categories, "{'" + '{\\"' * 5000),
])
def test_named_inputs_parse_in_bounded_time(function, text):
    result = timed(function, text)
    assert isinstance(result, (Parsed, str))


def test_a_long_answer_is_read_from_its_tail():
    from cosa_eval.judging.parsers import VERDICT_CHARS
    noise = "Rating: [[1]] " + "filler words " * (2 * VERDICT_CHARS // 13)
    assert timed(parse_rating, noise + "\nRating: [[4]]").value == 4
    assert timed(parse_rating, noise).value is None          # the early verdict lies beyond the tail
    assert len(unquoted(noise)) <= VERDICT_CHARS


# --- generated inputs ----------------------------------------------------------------------------
# Pieces that stress regexes and brace matchers, repeated into long runs, mixed with any unicode
# (lone surrogates included).
PIECES = (" ", "\n", "\t", "*", "[", "]", "[[", "]]", "{", "}", "'", '"', "\\", ":", ",", "<<<", ">>>",
          "<", ">", "=", "> ", "Rating:", "rating =", "[[YES]]", "[[no]]", "[[3]]", "{'", '{"', '{"a":',
          "{'a':", '{\\"', "true", "None", "QUOTED MATERIAL x BEGIN\n", "=== QUOTED MATERIAL x END ===\n",
          "<<<ANSWER BEGIN>>>", "<<<ANSWER END>>>", "<<<A BEGIN", "<<<A END", "\ud800", "\udfff", "\u00e9",
          "\U0001f600", "\u0663", "\u2028", "\x00")
ANY_CHAR = st.characters(codec=None, exclude_categories=())
RUN = st.tuples(st.sampled_from(PIECES), st.integers(1, 3000)).map(lambda pair: pair[0] * pair[1])
NOISE = st.lists(st.one_of(RUN, st.text(ANY_CHAR, max_size=40), st.sampled_from(PIECES)),
                 max_size=12).map("".join)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(NOISE)
def test_parsers_never_raise_and_stay_within_the_bound(text):
    for parse in PARSERS:
        parsed = timed(parse, text)
        assert isinstance(parsed, Parsed)
        assert parsed.is_valid or (parsed.failure == "unparseable" and parsed.detail)
        assert len(parsed.detail) < 1000         # a bounded snippet, never the whole answer
    timed(unquoted, text, ("quoted material",))


def _open_quotes(noise: str) -> bool:
    """Whether the noise opens a quote block (an unclosed one rightly hides what follows)."""
    return "BEGIN" in noise


@FUZZ
@given(NOISE, st.integers(0, 5), st.sampled_from(["Rating: [[{k}]]", "Rating: {k}", "**Rating:** [{k}]"]))
def test_a_final_rating_after_noise_is_read(noise, k, form):
    if _open_quotes(noise):
        noise = noise.replace("BEGIN", "")
    text = noise + "\n" + form.format(k=k)
    assert timed(parse_rating, unquoted(text)).value == k


@FUZZ
@given(NOISE, st.booleans())
def test_a_final_compliance_verdict_after_noise_is_read(noise, is_yes):
    text = noise.replace("BEGIN", "") + "\n" + ("[[YES]]" if is_yes else "[[NO]]")
    assert timed(parse_yes_no, unquoted(text)).value is is_yes


@FUZZ
@given(NOISE, st.sampled_from([json.dumps, lambda labels: json.dumps(labels, indent=2), repr]))
def test_a_final_category_object_after_noise_is_read(noise, dump):
    text = noise.replace("BEGIN", "") + "\n" + dump(LABELS)
    assert timed(parse_categories, unquoted(text)).value == LABELS


REQUEST = {verdict: JudgeRequest(key="k", messages=(), rubric="r", verdict=verdict)
           for verdict in ("rating", "yes_no", "categories")}
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(ANY_CHAR, max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                      max_size=4), max_leaves=12)
TOKENS = st.lists(st.one_of(JSONISH, st.fixed_dictionaries(
    {"token": st.one_of(st.text(ANY_CHAR, max_size=6), JSONISH), "logprob": JSONISH,
     "top_logprobs": st.one_of(JSONISH, st.lists(st.fixed_dictionaries({"token": JSONISH, "logprob": JSONISH}),
                                                 max_size=3))})), max_size=8)


@FUZZ
@given(st.sampled_from(sorted(REQUEST)), st.one_of(NOISE, JSONISH.map(json.dumps)), TOKENS)
def test_structured_replies_never_raise(verdict, content, tokens):
    for response in (timed(structured_response, REQUEST[verdict], content),
                     timed(logprob_response, REQUEST[verdict], content, tokens)):
        assert response.failure in (None, "unparseable")
        assert response.text is None or isinstance(response.text, str)


@pytest.mark.parametrize("content", ["[" * 100000, '{"rationale": ' * 50000, '{"rating": [' * 50000])
def test_a_deeply_nested_structured_reply_is_unparseable_text(content):
    response = timed(structured_response, REQUEST["rating"], content)
    assert response.failure is None and response.text == content
    assert parse_rating(response.text).failure == "unparseable"


def _tokens_around_verdict(verdict_token: object, after: object) -> tuple[str, list]:
    """A rating reply split into tokens, the verdict's token (and the one after) as given."""
    content = '{"rationale": "fine", "rating": 3}'
    at = content.index("3")
    return content, [{"token": content[:at], "logprob": 0.0}, verdict_token, after,
                     {"token": content[at + 1:], "logprob": 0.0}]


@FUZZ
@given(st.fixed_dictionaries({"token": st.one_of(st.just("3"), JSONISH), "logprob": st.one_of(st.floats(), JSONISH),
                              "top_logprobs": st.one_of(JSONISH, st.lists(st.fixed_dictionaries(
                                  {"token": st.one_of(st.sampled_from("0123456"), JSONISH),
                                   "logprob": st.one_of(st.floats(), JSONISH)}), max_size=4))}) | JSONISH,
       JSONISH)
def test_logprob_replies_with_any_token_fields_never_raise(verdict_token, after):
    content, tokens = _tokens_around_verdict(verdict_token, after)
    response = logprob_response(REQUEST["rating"], content, tokens)
    assert response.failure in (None, "unparseable")
    if response.failure is None:
        assert set(response.choice_probs) == set("012345") and abs(sum(response.choice_probs.values()) - 1) < 1e-6
