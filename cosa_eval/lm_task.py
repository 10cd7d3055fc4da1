"""lm_eval glue: the task class behind every cosa-eval YAML under ``tasks/``.

It puts each document's safety config in the system message, guards the measurement (chat
template required, config never silently dropped or truncated), checks the judge before any
generation, and judges every response of the run in one batch after generation: lm_eval filters
and scores one task after the other, so the first task to get there judges them all. The judged
records and their scores are written beside lm_eval's samples files.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from lm_eval.api.task import ConfigurableTask

from .data import DEMO_DATA_DIR, load_docs
from .errors import CosaError, exit_with
from .fewshot import as_turns
from .samples import sample_from_row
from .types import JudgedRecord, Sample

METRICS = ("cosa_score", "helpful_safe", "helpful_unsafe", "over_refusal", "valid_rate")
_AWAITING: list["CosaTask"] = []      # the run's tasks whose responses the judge has not seen yet


def setting(metadata: dict[str, Any] | None, key: str, env: str) -> Any:
    """A run setting from lm_eval ``--metadata`` (wins) or the environment."""
    value = (metadata or {}).get(key)
    return value if value not in (None, "") else os.environ.get(env) or None


def _user_errors(fn: Callable) -> Callable:
    """Turn a CosaError raised inside lm_eval into a one-line message and exit status 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CosaError as error:
            exit_with(error, own_line=True)
    return wrapper


IDENTITY = ("benchmark", "schema", "variant", "config_id")   # what every task YAML declares


@_user_errors
def load_split(data_dir: str | None = None, packaged: bool = False, **kwargs: Any) -> dict[str, Any]:
    """``custom_dataset`` hook: validated docs of one config, carrying the identity its task YAML
    declares in ``dataset_kwargs`` (from the hub, the local override, or the project's own packaged
    sample when ``packaged``)."""
    from datasets import Dataset
    missing = [key for key in IDENTITY if not kwargs.get(key)]
    if missing:
        raise CosaError(f"a cosa-eval task YAML's dataset_kwargs lacks {', '.join(missing)}; declare "
                        "benchmark, schema (cosapien | cosalign_test), variant (0shot | 5shot) and config_id, "
                        "as in tasks/README.md")
    docs = load_docs(kwargs["schema"], kwargs["config_id"], data_dir=DEMO_DATA_DIR if packaged else data_dir,
                     benchmark=kwargs["benchmark"], variant=kwargs["variant"])
    return {"test": Dataset.from_list(docs)}


@functools.lru_cache(maxsize=None)
def judge_named(name: str) -> Any:
    """One judge per process, so a local judge model loads (and is checked) once for all subtasks."""
    from .judging import load_judge
    return load_judge(name)


LM_EVAL_JUDGE_FIX = ("or judge with another one (--metadata '{\"judge\": NAME}' or COSA_JUDGE=NAME), or generate "
                     "now with --predict_only --log_samples and judge later with 'cosa-eval judge'")


def check_judge(judge: Any) -> None:
    """The judge's readiness check, its error ending with the fixes an lm_eval user has."""
    try:
        judge.check_ready()
    except CosaError as error:
        raise CosaError(f"{error}; {LM_EVAL_JUDGE_FIX}") from None


@functools.lru_cache(maxsize=None)
def _note_spinning_threads() -> None:
    """Once per run: plain lm_eval loads torch before this module, too late to set OpenMP's wait policy,
    and on a busy CPU spinning threads make generation up to 10x slower (benchmarks/omp_wait.py)."""
    import torch
    if not os.environ.get("OMP_WAIT_POLICY") and not torch.cuda.is_available():
        print("cosa-eval: note: OMP_WAIT_POLICY is not set, so CPU generation can run up to 10x slower on a busy "
              "machine; run through `cosa-eval eval` (which sets it) or export OMP_WAIT_POLICY=PASSIVE",
              file=sys.stderr)


def _system_survived(rendered: Any, system: str) -> bool:
    """Whether the rendered prompt still carries the config (HF/vLLM drop it on template errors)."""
    text = getattr(rendered, "prompt", rendered)  # lm_eval's JsonChatStr for chat APIs
    try:
        messages = json.loads(text)
    except (TypeError, ValueError):
        return system.strip() in str(text)
    return isinstance(messages, list) and any(
        m.get("role") == "system" and system.strip() in m.get("content", "") for m in messages)


class CosaTask(ConfigurableTask):
    """A cosapien / cosalign_test subtask (one config split)."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        config.pop("class", None)
        # Metrics come from this class's process_results; saying so stops lm_eval from looking each
        # metric name up in the HF evaluate library (seconds per metric and subtask, and the network).
        config.setdefault("process_results", "CosaTask.process_results")
        super().__init__(config=config, **kwargs)
        self._records: dict[tuple[str, str, str], JudgedRecord] = {}

    # -- settings --------------------------------------------------------------------------
    @property
    def _metadata(self) -> dict[str, Any]:
        return self.config.metadata or {}

    @property
    def _is_predict_only(self) -> bool:
        return "bypass" in self._metric_fn_list

    def _judge(self) -> Any:
        from .judging.config import default_judge
        return judge_named(default_judge(self._metadata.get("judge")))

    # -- prompt construction ---------------------------------------------------------------
    def _messages(self, doc: dict[str, Any], system_instruction: str | None, fold: bool) -> list[dict[str, str]]:
        """System message (the doc's config), the doc's own demonstrations, then its prompt."""
        system = "\n\n".join(filter(None, [system_instruction, doc["system"]]))
        turns = [*as_turns(doc.get("demos") or []), {"role": "user", "content": doc["prompt"]}]
        if fold:
            turns[0] = {"role": "user", "content": f"{system}\n\n{turns[0]['content']}"}
            return turns
        return [{"role": "system", "content": system}, *turns]

    def _check_length(self, lm: Any, rendered: Any, doc: dict[str, Any]) -> None:
        if not (hasattr(lm, "tok_encode") and hasattr(lm, "max_length")) or not isinstance(rendered, str):
            return
        reserve = int(self.config.generation_kwargs.get("max_gen_toks", 1024))
        budget = lm.max_length - reserve
        length = len(lm.tok_encode(rendered))
        if length > budget:
            raise CosaError(
                f"{self.config.task}: a prompt is {length} tokens but the model keeps only {budget} "
                f"(max_length {lm.max_length} - {reserve} answer tokens), so lm_eval would cut the safety "
                "config from the left; raise --model_args max_length=... or lower --gen_kwargs max_gen_toks=...")

    @_user_errors
    def fewshot_context(self, doc: dict[str, Any], num_fewshot: int, system_instruction: str | None = None,
                        apply_chat_template: bool = False, fewshot_as_multiturn: bool = False,
                        chat_template: Callable[..., Any] | None = None, gen_prefix: str | None = None) -> Any:
        if not apply_chat_template or chat_template is None:
            raise CosaError("cosa-eval tasks need --apply_chat_template: the safety config must reach the "
                            "model as a system message, and without a chat template it would be glued to the prompt")
        if num_fewshot:
            raise CosaError(f"--num_fewshot {num_fewshot} is not used by cosa-eval tasks; run the *_5shot tasks "
                            "(cosapien_5shot, cosalign_test_5shot) for in-context demonstrations")
        fold_setting = setting(self._metadata, "fold_system", "COSA_FOLD_SYSTEM")
        fold = str(fold_setting or "").lower() not in ("", "0", "false", "no")
        rendered = chat_template(self._messages(doc, system_instruction, fold=False), add_generation_prompt=True)
        if not _system_survived(rendered, doc["system"]):
            if not fold:
                raise CosaError(
                    f"{self.config.task}: the model's chat template drops the system message, so the safety "
                    "config would be lost; use a model whose template accepts a system role, or opt in to "
                    "folding the config into the user turn with --metadata '{\"fold_system\": true}' "
                    "(or COSA_FOLD_SYSTEM=1), which is recorded in the results")
            self.config.metadata = {**self._metadata, "system_message": "folded into the first user turn"}
            rendered = chat_template(self._messages(doc, system_instruction, fold=True), add_generation_prompt=True)
        self._check_length(getattr(chat_template, "__self__", None), rendered, doc)
        return rendered

    # -- judging ---------------------------------------------------------------------------
    @_user_errors
    def build_all_requests(self, *args: Any, **kwargs: Any) -> None:
        """Check the judge before any generation, unless the run is --predict_only."""
        _note_spinning_threads()
        if not self._is_predict_only:
            check_judge(self._judge())
            self._records = {}
            if self not in _AWAITING:
                _AWAITING.append(self)
        return super().build_all_requests(*args, **kwargs)

    @staticmethod
    def _key(doc: dict[str, Any], response: str) -> tuple[str, str, str]:
        return doc["prompt"], doc["system"], response

    def _samples(self) -> list[Sample]:
        """This task's generated responses as samples, in instance order."""
        filter_key = next(iter(self._instances[0].filtered_resps))
        return [sample_from_row(self.config.task, {"doc": inst.doc, "doc_id": inst.doc_id,
                                                   "filtered_resps": inst.filtered_resps[filter_key]},
                                f"{self.config.task} doc {inst.doc_id}") for inst in self._instances]

    @_user_errors
    def apply_filters(self) -> Any:
        """After generation: the first task here judges the whole run's responses in one batch."""
        result = super().apply_filters()
        if not self._is_predict_only and self._instances and not self._records:
            _judge_awaiting(self)
        return result

    def process_results(self, doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
        if self._is_predict_only:
            return super().process_results(doc, results)
        row = self._records[self._key(doc, results[0])].to_dict()
        return {metric: row for metric in METRICS}


def _judge_awaiting(trigger: CosaTask) -> None:
    """Judge every generated task of the run at once (one engine call per judge and cache, so a
    local judge batches across configs and an API judge keeps its calls in flight across subtasks),
    then write the judged files and scores beside lm_eval's samples files."""
    from .judging.engine import judge_run
    batch = [t for t in _AWAITING if t is not trigger and t._instances and all(i.resps for i in t._instances)]
    _AWAITING.clear()
    groups: dict[tuple[int, Any], list[CosaTask]] = defaultdict(list)
    for task in [trigger, *batch]:
        if task is not trigger:
            ConfigurableTask.apply_filters(task)      # lm_eval filters each task only when it gets to it
        groups[id(task._judge()), task._metadata.get("judge_cache")].append(task)
    records: list[JudgedRecord] = []
    judges = []
    for (_, cache), tasks in groups.items():
        judges.append(tasks[0]._judge())
        samples = [task._samples() for task in tasks]
        run = judge_run([s for own in samples for s in own], tasks[0]._judge(), cache_path=cache).records
        offset = 0
        for task, own in zip(tasks, samples):
            judged = run[offset:offset + len(own)]
            offset += len(own)
            task._records = {task._key(inst.doc, s.response): r for inst, s, r in zip(task._instances, own, judged)}
        records += run
    folder = _samples_folder()
    if folder is not None:
        _write_judged(folder, records, judges)


def _samples_folder() -> Path | None:
    """Where this run's lm_eval writes ``samples_*.jsonl``: the ``output_path`` of the
    ``EvaluationTracker`` handed to ``simple_evaluate`` (found up the call stack, as lm_eval's CLI
    and Python API both pass it), under the sanitized model name as lm_eval's tracker does; None
    when the run saves no files (no tracker, or no output path)."""
    from lm_eval.loggers import EvaluationTracker
    frame = sys._getframe(1)
    while frame is not None and not isinstance(frame.f_locals.get("evaluation_tracker"), EvaluationTracker):
        frame = frame.f_back
    tracker = frame.f_locals["evaluation_tracker"] if frame is not None else None
    if tracker is None or not tracker.output_path:
        return None
    path = Path(tracker.output_path)
    return path.parent if path.suffix == ".json" else path / str(tracker.general_config_tracker.model_name_sanitized)


def _write_judged(folder: Path, records: list[JudgedRecord], judges: list[Any]) -> None:
    """The judged files, scores and manifest of this run's judging, as ``cosa-eval judge`` writes
    them (the manifest lists only this run's files, so a folder that mixes runs is refused later)."""
    from .judging.outputs import write_run_outputs
    judge = judges[0]
    manifest = {"judge": judge.name, "rubric_hashes": {n: r.hash for n, r in judge.rubrics.items()},
                "parser": judge.config.parser, "samples": [],
                "run": {"judged_inside": "lm_eval"}, "judge_identity": judge.identity()}
    extra = {"parser": judge.config.parser, "judge_endpoint": judge.identity().get("endpoint", "")}
    write_run_outputs(folder, records, manifest, extra)


def _score(rows: list[dict[str, Any]], metric: str) -> float:
    """One overall metric of a subtask; NaN when undefined (no valid or no fully allowed response),
    so lm_eval's group means still run and the run's results are saved."""
    from .scoring.metrics import score_records
    value = score_records([JudgedRecord.from_dict(row) for row in rows])["overall"][metric]
    return float("nan") if value is None else value


def agg_cosa_score(rows: list[dict[str, Any]]) -> float:
    return _score(rows, "cosa_score")


def agg_helpful_safe(rows: list[dict[str, Any]]) -> float:
    return _score(rows, "helpful_safe")


def agg_helpful_unsafe(rows: list[dict[str, Any]]) -> float:
    return _score(rows, "helpful_unsafe")


def agg_over_refusal(rows: list[dict[str, Any]]) -> float:
    return _score(rows, "over_refusal")


def agg_valid_rate(rows: list[dict[str, Any]]) -> float:
    return _score(rows, "valid_rate")
