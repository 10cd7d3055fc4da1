"""``cosa-eval``: one entry point, one small module per subcommand (imported only when used)."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from . import __version__
from .errors import CosaError, exit_with, os_error_line

# subcommand -> (module exposing add_arguments(parser) and main(args) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("cosa_eval.run_eval", "run lm_eval with the cosa-eval tasks on its include path"),
    "judge": ("cosa_eval.judging.cli", "judge lm_eval samples_*.jsonl files and score them"),
    "leaderboard": ("cosa_eval.scoring.cli", "merge judged runs into results/ CSVs, markdown, HTML and a plot"),
    "judge-agreement": ("cosa_eval.judging.agreement_cli", "agreement between judges and with human labels"),
    "train": ("cosa_eval.train.cli", "CoSAlign training pipeline steps (label, synthesize, ..., sft, dpo)"),
    "view": ("cosa_eval.view.cli", "write one self-contained HTML explorer of judged runs (verdicts, rationales, adjudication)"),
    "demo": ("cosa_eval.demo", "run the whole pipeline offline on a small real model"),
    "tasks": ("cosa_eval.task_catalog", "list every cosa-eval task and group with its document count and data"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported, so ``--help`` stays instant."""
    parser = argparse.ArgumentParser(
        prog="cosa-eval",
        description="Measure controllable safety alignment (CoSA-Score) with lm-evaluation-harness.",
        epilog="Run 'cosa-eval COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"cosa-eval {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module=module)
        if name == command and name != "eval":
            importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Before torch loads, here and in every process a command starts (lm_eval, training): waiting OpenMP
    # threads sleep instead of spinning. On 2 busy cores spinning made CPU generation 10-14x slower
    # (benchmarks/omp_wait.py: 48-69 s vs 4.7-4.8 s at load average 5-8).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    terminated: list[int] = []
    previous = _sigterm_as_sigint(terminated)
    try:
        if argv[:1] == ["eval"]:
            from .run_eval import run_lm_eval
            return run_lm_eval(argv[1:])
        parser = build_parser(argv[0] if argv else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return int(importlib.import_module(args.module).main(args) or 0)
    except CosaError as error:
        exit_with(error, own_line=_progress_bar_open())
    except OSError as error:
        exit_with(os_error_line(error), own_line=_progress_bar_open())
    except KeyboardInterrupt:
        what, code = ("terminated", 128 + signal.SIGTERM) if terminated else ("interrupted", 130)
        exit_with(f"{what}; answered judge calls are kept in the cache, re-run to resume", code,
                  own_line=_progress_bar_open())
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_sigint(received: list[int]) -> object:
    """Make SIGTERM do what Ctrl-C does (the same cancellation, the same one line), noting it in
    ``received``; returns the handler it replaced (None off the main thread, where none can be set)."""
    def on_sigterm(signum: int, _frame: object) -> None:
        received.append(signum)
        signal.raise_signal(signal.SIGINT)

    try:
        return signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:
        return None


def _progress_bar_open() -> bool:
    """Whether a tqdm bar still holds stderr's current line (the error line then starts a new one)."""
    tqdm = sys.modules.get("tqdm.std")
    return bool(tqdm and len(getattr(tqdm.tqdm, "_instances", ())))


if __name__ == "__main__":
    sys.exit(main())
