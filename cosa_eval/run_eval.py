"""``cosa-eval eval``: lm_eval's own CLI, with the cosa-eval tasks on its include path.

The arguments are parsed by lm_eval's own parser first (a value it cannot read, such as bad
``--metadata`` JSON, is then an argument error), the task names are checked against the cosa-eval
catalog (and lm_eval's own index only for names that are not ours), and only then does lm_eval run.
"""
from __future__ import annotations

import argparse
import sys

from . import tasks_dir
from .errors import CosaError, did_you_mean

USAGE = """usage: cosa-eval eval [lm_eval run arguments]

Runs lm_eval exactly as `lm_eval run ...` would, adding `--include_path` for the cosa-eval tasks
(`cosa-eval tasks` lists them: cosapien, cosalign_test, cosalign_test_seen, cosalign_test_unseen,
their per-config subtasks, the *_5shot variants and the packaged cosapien_demo sample).
`--apply_chat_template` is required: the safety config is a system message.

  cosa-eval eval --model hf --model_args pretrained=MODEL --tasks cosapien \\
      --apply_chat_template --log_samples --output_path out --metadata '{"judge": "gpt-4o"}'

Judge: --metadata '{"judge": NAME|PATH}' or COSA_JUDGE (default gpt-4o); --predict_only skips
judging (judge later with `cosa-eval judge out`). Local data: --metadata '{"data_dir": DIR}' or
COSA_DATA_DIR. `cosa-eval eval ls tasks` and `cosa-eval eval validate --tasks X` work too.

lm_eval's own options (lm_eval run --help):
"""
SUBCOMMANDS = ("run", "ls", "validate")


def _parse(argv: list[str]) -> tuple[object, argparse.Namespace]:
    """lm_eval's CLI object and its parsed arguments; a value lm_eval cannot read is a CosaError."""
    from lm_eval._cli import HarnessCLI  # what lm_eval's own `lm_eval` entry point builds
    saved = sys.argv
    sys.argv = ["cosa-eval eval", *argv]
    try:
        cli = HarnessCLI()
        return cli, cli.parse_args()
    except ValueError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        flags = [flag for flag, value in zip(argv, argv[1:]) if flag.startswith("-") and value and value in message]
        raise CosaError(f"lm_eval cannot read {flags[0] if flags else 'its arguments'}: {message}") from None
    finally:
        sys.argv = saved


def _check_tasks(names: list[str], include_path: str) -> None:
    """Unknown task names stop the run before lm_eval loads a model, with a did-you-mean."""
    from pathlib import Path
    from .task_catalog import task_names
    ours = task_names()
    unknown = [n for n in names if n not in ours and not n.endswith(".yaml") and not Path(n).exists()]
    if not unknown:
        return
    from lm_eval.tasks import TaskManager
    manager = TaskManager(include_path=include_path)
    missing = [name for name in unknown if not manager.match_tasks([name])]
    if missing:
        text = ", ".join(f"{name!r}{did_you_mean(name, ours) or did_you_mean(name, manager.all_tasks)}"
                         for name in missing)
        raise CosaError(f"unknown task {text}; `cosa-eval tasks` lists the cosa-eval tasks and groups")


def _check_judge(args: argparse.Namespace) -> None:
    """A run that judges checks its judge before lm_eval loads the model (lm_eval imports the tasks,
    whose own check is the same, only after the model has loaded)."""
    from .task_catalog import task_names
    if getattr(args, "predict_only", False) or not set(args.tasks or []) & set(task_names()):
        return
    from .judging.config import default_judge
    from .lm_task import check_judge, judge_named
    metadata = args.metadata if isinstance(getattr(args, "metadata", None), dict) else {}
    check_judge(judge_named(default_judge(metadata.get("judge"))))


def run_lm_eval(argv: list[str]) -> int:
    """Hand ``argv`` to lm_eval's CLI with the task folder added; returns lm_eval's status."""
    if {"-h", "--help"} & set(argv):
        print(USAGE)
        argv = ["run", "--help"]
    if argv[:1] in (["ls"], ["validate"]) and "--include_path" not in argv:
        argv = [*argv, "--include_path", str(tasks_dir())]
    cli, args = _parse(argv if argv[:1] and argv[0] in SUBCOMMANDS else ["run", *argv])
    if args.command == "run":
        if not hasattr(args, "apply_chat_template") and not getattr(args, "config", None):
            raise CosaError("add --apply_chat_template: cosa-eval puts each safety config in the system message, "
                            "which only a chat template delivers to the model")
        args.include_path = args.include_path or str(tasks_dir())
        _check_tasks(args.tasks or [], args.include_path)
        _check_judge(args)
    from lm_eval.utils import setup_logging
    setup_logging()
    cli.execute(args)
    return 0
