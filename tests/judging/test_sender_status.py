"""A judge server that stops answering: the run says what it waits for, and counts only answered calls."""
from __future__ import annotations

from cosa_eval.judging import load_judge
from cosa_eval.judging import sender
from cosa_eval.judging.cli import _summary
from cosa_eval.judging.engine import judge_run
from judging_helpers import JUDGE_MODEL, SECRET_KEY, cosalign_samples, write_judge
from openai_server import FakeOpenAIServer


def test_a_server_that_stops_answering_is_named_and_not_counted(tmp_path, cache_path, cosalign_rows, monkeypatch,
                                                                capsys):
    monkeypatch.setattr(sender, "_QUIET_S", 0.5)
    monkeypatch.setattr(sender, "_CHECK_S", 0.05)
    def fault(number, body):              # the first 2 calls are answered; then each attempt times out
        return "timeout" if number >= 2 else None

    with FakeOpenAIServer(model=JUDGE_MODEL, fault_rule=fault, timeout_sleep_s=0.7) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        retries = {"timeout_s": 0.5, "max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02}
        judge = load_judge(write_judge(tmp_path / "judges", concurrency=1, backend_options=retries))
        run = judge_run(cosalign_samples(cosalign_rows, 0, 2), judge, progress=False)
    err = capsys.readouterr().err
    assert "waiting for 1 answer from http://127.0.0.1:" in err and "retries" in err
    assert (run.stats.sent, run.stats.unanswered) == (4, 2)
    summary = _summary(run, tmp_path / "out")
    assert "2 calls answered (2 more sent but never answered, after the backend's retries)" in summary
