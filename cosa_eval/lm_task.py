"""lm_eval glue: the task class behind every cosa-eval YAML under ``tasks/``.

It puts each document's safety config in the system message, guards the measurement (chat
template required, config never silently dropped or truncated), checks the judge before any
generation, and judges all of a task's responses in one batch after generation.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable

from lm_eval.api.task import ConfigurableTask

from .data import DEMO_DATA_DIR, load_docs
from .errors import CosaError, exit_with
from .fewshot import as_turns
from .samples import sample_from_row
from .types import JudgedRecord

METRICS = ("cosa_score", "helpful_safe", "helpful_unsafe", "over_refusal", "valid_rate")


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
def _load_judge(name: str) -> Any:
    """One judge per process, so a local judge model loads once for all subtasks."""
    from .judging import load_judge
    return load_judge(name)


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
        return _load_judge(default_judge(self._metadata.get("judge")))

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
        if not self._is_predict_only:
            self._judge().check_ready()
        return super().build_all_requests(*args, **kwargs)

    @staticmethod
    def _key(doc: dict[str, Any], response: str) -> tuple[str, str, str]:
        return doc["prompt"], doc["system"], response

    @_user_errors
    def apply_filters(self) -> Any:
        """After generation: judge every response of this task in one concurrent batch."""
        result = super().apply_filters()
        if self._is_predict_only or not self._instances:
            return result
        from .judging.engine import judge_samples
        filter_key = next(iter(self._instances[0].filtered_resps))
        samples = [sample_from_row(self.config.task, {"doc": inst.doc, "doc_id": inst.doc_id,
                                                      "filtered_resps": inst.filtered_resps[filter_key]},
                                   f"{self.config.task} doc {inst.doc_id}") for inst in self._instances]
        cache = setting(self._metadata, "judge_cache", "COSA_JUDGE_CACHE")
        records = judge_samples(samples, self._judge(), cache_path=cache)
        self._records = {self._key(inst.doc, s.response): r for inst, s, r in zip(self._instances, samples, records)}
        return result

    def process_results(self, doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
        if self._is_predict_only:
            return super().process_results(doc, results)
        row = self._records[self._key(doc, results[0])].to_dict()
        return {metric: row for metric in METRICS}


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
