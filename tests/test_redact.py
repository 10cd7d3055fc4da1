"""One redaction for every error text: environment keys and key-shaped tokens never reach a stream."""
from __future__ import annotations

import pytest

from cosa_eval.errors import CosaError, exit_with, redact

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
