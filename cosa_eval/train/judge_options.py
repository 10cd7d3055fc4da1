"""The judge options of the training steps that ask a judge (``label``, ``judge``), and the session
they open: the same judging loop, cache and rubric table as an evaluation (``JudgeSession.ask``),
so a question the evaluation already asked is answered from the cache, and vice versa.
"""
from __future__ import annotations

import os
from typing import Any

from ..errors import CosaError


def add_judge_arguments(parser: Any) -> None:
    """``--judge``, ``--cache``, ``--concurrency`` and ``--chunk``, shared by ``label`` and ``judge``."""
    parser.add_argument("--judge", default=None,
                        help="judge name (judges/<name>) or judge.yaml path; default: $COSA_JUDGE or gpt-4o")
    parser.add_argument("--cache", default=None, help="judge cache file (default: the judging engine's)")
    parser.add_argument("--concurrency", type=int, default=None, help="parallel judge calls (default: the judge's)")
    parser.add_argument("--chunk", type=int, default=256, help="rows judged between two writes (default: 256)")


def judge_session(args: Any) -> Any:
    """A ``JudgeSession`` for the step's ``--judge``/``--cache``/``--concurrency`` (close it after);
    ``COSA_NO_PROGRESS`` hides its bars, as it hides the steps' own."""
    from ..judging.config import default_judge
    from ..judging.engine import JudgeSession
    from ..judging.judge import load_judge
    if args.chunk < 1:
        raise CosaError(f"--chunk {args.chunk} must be at least 1")
    judge = load_judge(default_judge(args.judge), concurrency=args.concurrency)
    return JudgeSession(judge, cache_path=args.cache, progress=not os.environ.get("COSA_NO_PROGRESS"))


def session_settings(session: Any) -> dict[str, Any]:
    """What a step's manifest records about its judge: name, model, endpoint and the calls made."""
    judge, stats = session.judge, session.stats
    return {"judge": judge.name, "judge_model": judge.config.model,
            "judge_endpoint": judge.identity().get("endpoint", ""),
            "sent": stats.sent, "cached": stats.cached, "reasked": stats.reasked}


def failure_summary(failures: dict[str, int]) -> str:
    if not failures:
        return ""
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(failures.items()))
    replayed = failures.get("unparseable", 0) + failures.get("judge_refused", 0)
    then = ("the judge's answers to them are cached, so a re-run gives the same; use another judge or "
            "--cache FILE to ask again") if replayed else "re-run to retry them"
    return f"; {sum(failures.values())} failed ({kinds}) and were not written: {then}"
