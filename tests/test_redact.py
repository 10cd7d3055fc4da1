"""One redaction for every error text: environment keys and key-shaped tokens never reach a stream."""
from __future__ import annotations

import string

import pytest
from hypothesis import given, settings, strategies as st

from cosa_eval.errors import CosaError, exit_with, redact
from cosa_eval.redaction import public_url, remember_url

KEY = "sk-proj-" + "Aa1" * 16


def test_environment_keys_and_key_shapes_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret-value")
    text = (f"401: Incorrect API key provided: {KEY}; header Authorization: Bearer abc.def-123 "
            "token tok-1234567890 azure-secret-value sk-other-0123456789")
    masked = redact(text)
    for secret in (KEY, "abc.def-123", "tok-1234567890", "azure-secret-value", "sk-other-0123456789"):
        assert secret not in masked
    assert "Bearer ***" in masked and masked.startswith("401: Incorrect API key provided: ***")


def test_a_cut_after_redaction_leaves_no_key_prefix(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    detail = redact("x" * 190 + KEY)[:200]
    assert KEY[:10] not in detail


def test_exit_with_redacts_and_prints_one_line(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(SystemExit) as stop:
        exit_with(CosaError(f"server said:\n{KEY}\nbye"))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and KEY not in err and err.count("\n") == 1
    assert err.startswith("cosa-eval: error: server said: *** bye")


def test_a_short_key_is_masked_where_it_stands_alone(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k3y")
    masked = redact("401: key k3y rejected; Bearer k3y; url?api-key=k3y; monk3ys stay")
    assert "k3y " not in masked and "k3y;" not in masked and masked.endswith("monk3ys stay")
    assert redact("valid 1/2, HTTP 401") == "valid 1/2, HTTP 401"


def test_the_credentials_of_every_base_url_are_masked_and_never_recorded(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://ann:p%40ss-w0rd@judge.example:8000/v1?api-key=qk-777&x=1")
    remember_url("https://bob:hunter2@other.example/v1?token=zz9")
    text = ("failed http://ann:p%40ss-w0rd@judge.example:8000/v1?api-key=qk-777 (password p@ss-w0rd) "
            "https://bob:hunter2@other.example/v1?token=zz9 qk-777 hunter2 zz9")
    masked = redact(text)
    for secret in ("ann", "p%40ss-w0rd", "p@ss-w0rd", "qk-777", "bob", "hunter2", "zz9"):
        assert secret not in masked.split("://")[-1] and f" {secret}" not in masked, (secret, masked)
    assert public_url("http://ann:pw@judge.example:8000/v1?api-key=qk-777#f") == "http://judge.example:8000/v1"
    assert public_url("https://[::1]:9/v1") == "https://[::1]:9/v1" and public_url(None) == ""


KEY_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=3, max_size=40)
NOISE = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=150, deadline=None)
@given(key=KEY_TEXT, before=NOISE, after=NOISE, sep=st.sampled_from([" ", "\n", ": ", "=", '"', "/", "&"]))
def test_a_key_of_any_length_never_survives_redaction(key, before, after, sep):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", key)
        masked = redact(before + sep + key + sep + after)
    assert sep + key + sep not in masked


@settings(max_examples=150, deadline=None)
@given(user=KEY_TEXT, password=KEY_TEXT, query=KEY_TEXT, noise=NOISE)
def test_a_base_url_credential_never_survives_redaction(user, password, query, noise):
    url = f"http://{user}:{password}@h.example:1/v1?api-key={query}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", url)
        masked = redact(f"{noise} {url} {noise} ({password}) [{query}]")
    assert f"({password})" not in masked and f"[{query}]" not in masked and f"{user}:{password}@" not in masked
    assert "?api-key=***" in masked


@settings(max_examples=200, deadline=1000)
@given(text=st.text(max_size=5000))
def test_redaction_is_fast_and_total_on_any_text(text):
    assert isinstance(redact(text), str)
