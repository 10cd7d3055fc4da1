"""``cosa-eval eval``: lm_eval's own CLI, with the cosa-eval tasks on its include path."""
from __future__ import annotations

import sys

from . import tasks_dir
from .errors import CosaError, did_you_mean

USAGE = """usage: cosa-eval eval [lm_eval arguments]

Runs lm_eval exactly as `lm_eval ...` would, adding `--include_path` for the cosa-eval tasks
(cosapien, cosalign_test, cosalign_test_seen, cosalign_test_unseen, their per-config subtasks and
the *_5shot variants). `--apply_chat_template` is required: the safety config is a system message.

  cosa-eval eval --model hf --model_args pretrained=MODEL --tasks cosapien \\
      --apply_chat_template --log_samples --output_path out --metadata '{"judge": "gpt-4o"}'

Judge: --metadata '{"judge": NAME|PATH}' or COSA_JUDGE (default gpt-4o); --predict_only skips
judging (judge later with `cosa-eval judge out`). Local data: --metadata '{"data_dir": DIR}' or
COSA_DATA_DIR. lm_eval's own options follow.
"""


def _has_flag(argv: list[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def _task_names(argv: list[str]) -> list[str]:
    for i, arg in enumerate(argv):
        if arg.startswith("--tasks="):
            return arg.split("=", 1)[1].split(",")
        if arg == "--tasks" and i + 1 < len(argv):
            return argv[i + 1].split(",")
    return []


def _known_tasks() -> list[str]:
    return sorted(p.stem for p in (tasks_dir() / "cosa").glob("*.yaml") if p.stem != "demos")


def _unknown_task_error(message: str, argv: list[str]) -> CosaError:
    known = _known_tasks()
    missing = [t for t in _task_names(argv) if t not in known] or [message]
    text = ", ".join(f"{t!r}{did_you_mean(t, known)}" for t in missing)
    return CosaError(f"unknown task {text}; cosa-eval tasks: cosapien, cosalign_test, cosalign_test_seen, "
                     "cosalign_test_unseen, cosapien_5shot, cosalign_test_5shot (list all: "
                     "lm_eval ls tasks --include_path \"$(python -c 'import cosa_eval;print(cosa_eval.tasks_dir())')\")")


def run_lm_eval(argv: list[str]) -> int:
    """Hand ``argv`` to lm_eval's CLI with the task folder added; returns lm_eval's status."""
    if _has_flag(argv, "--help") or _has_flag(argv, "-h"):
        print(USAGE)
    elif not _has_flag(argv, "--apply_chat_template"):
        raise CosaError("add --apply_chat_template: cosa-eval puts each safety config in the system message, "
                        "which only a chat template delivers to the model")
    if not _has_flag(argv, "--include_path"):
        argv = [*argv, "--include_path", str(tasks_dir())]
    from lm_eval.__main__ import cli_evaluate
    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except ValueError as error:
        if str(error).startswith("Tasks not found"):
            raise _unknown_task_error(str(error), argv) from None
        raise
    finally:
        sys.argv = saved
    return 0
