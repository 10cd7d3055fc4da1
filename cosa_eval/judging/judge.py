"""A loaded judge: its config, compiled rubrics and backend, and the requests it makes.

A request is built from a rubric name and its variables (``prompt``, ``response``, ``config``);
its key covers everything that determines the answer: the backend's identity (endpoint + model),
sampling, rubric version, messages, choices, verdict format and attempt. Timeouts, retries,
concurrency and the parser are never in it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import CosaError
from ..types import Sample
from .backends.base import Backend, JudgeRequest
from .cache import KeyFrame, canonical
from .config import JudgeConfig, load_judge_config, shipped_rubric
from .pricing import price_of
from .registry import load_backend_class
from .rubric import RUBRICS, Rubric, load_rubric, neutralise, spec_of

PARSER_CHOICES = ("final", "reference")
_SAFETY_RUBRIC = {"cosapien": "compliance", "cosalign_test": "categories"}


def safety_rubric(sample: Sample) -> str:
    """The safety question of a sample's schema: compliance (cosapien) or categories (cosalign_test)."""
    schema = sample.schema
    if schema not in _SAFETY_RUBRIC:
        raise CosaError(f"sample {sample.sample_id}: schema {schema!r} has no safety rubric; "
                        f"expected one of {', '.join(_SAFETY_RUBRIC)}")
    return _SAFETY_RUBRIC[schema]


def sample_item(sample: Sample) -> dict[str, str]:
    """The rubric variables of one sample."""
    return {"prompt": sample.prompt, "response": sample.response, "config": sample.config}


@dataclass
class Judge:
    """Backend + model + sampling + rubrics, ready to build requests."""

    config: JudgeConfig
    rubrics: dict[str, Rubric]
    concurrency: int
    endpoint: str | None = None                  # --judge-endpoint: the backend's base_url
    _backend: Backend | None = field(default=None, repr=False)
    _identity: dict[str, str] | None = field(default=None, repr=False)
    _frames: tuple[Any, dict[tuple, KeyFrame]] = field(default_factory=lambda: (None, {}), repr=False)

    @property
    def name(self) -> str:
        """The judge's name (its folder name unless judge.yaml sets ``name``)."""
        return self.config.name

    @property
    def prices(self) -> tuple[float, float] | None:
        """USD per 1M (input, output) tokens, or None when unknown."""
        return price_of(self.config.model, self.config.prices)

    @property
    def scores_choices(self) -> bool:
        """Whether verdicts are scored over choices (logit scoring, or logprobs over HTTP)."""
        return self.config.logit_scoring or self.config.verdict_format == "logprobs"

    def rubric_hashes(self, sample: Sample) -> dict[str, str]:
        """Version hashes of the two rubrics a sample is judged with."""
        return {name: self.rubrics[name].hash for name in ("helpfulness", safety_rubric(sample))}

    def backend(self) -> Backend:
        """The backend instance, built on first use (contract: ``backends/base.py``)."""
        if self._backend is None:
            cls = load_backend_class(self.config.backend)
            options: dict[str, Any] = dict(self.config.backend_options)
            if self.endpoint:
                options["base_url"] = self.endpoint
            try:
                self._backend = cls(self.config.model, dict(self.config.sampling),
                                    concurrency=self.concurrency, **options)
            except TypeError as exc:
                raise CosaError(f"{self.config.path}: field 'backend_options' does not fit backend "
                                f"{self.config.backend!r} ({exc})") from None
        return self._backend

    def check_ready(self) -> None:
        """Raise ``CosaError`` with a how-to-fix message if this judge cannot run here (once)."""
        if self._identity is None:
            backend = self.backend()
            backend.check_ready()
            self._identity = dict(backend.identity())

    def identity(self) -> dict[str, str]:
        """Where and what answers (endpoint, model): as checked by ``check_ready``, else as configured."""
        return dict(self._identity) if self._identity is not None else dict(self.backend().identity())

    def messages(self, rubric: str, item: Mapping[str, Any],
                 history: tuple[str, ...] = ()) -> tuple[dict[str, str], ...]:
        """The chat of one rubric for one item; each earlier unreadable answer is followed by the
        rubric's next (stricter) re-ask, so no attempt repeats another."""
        spec = spec_of(rubric)
        text = self.rubrics[rubric].render(**item, answer_only=self.scores_choices and bool(spec.choices))
        messages: tuple[dict[str, str], ...] = ({"role": "user", "content": text},)
        for attempt, previous in enumerate(history):
            reask = spec.reasks[min(attempt, len(spec.reasks) - 1)]
            messages += ({"role": "assistant", "content": previous}, {"role": "user", "content": reask})
        return messages

    def request(self, rubric: str, item: Mapping[str, Any], history: tuple[str, ...] = (),
                identity: Mapping[str, str] | None = None) -> JudgeRequest:
        """One request (attempt ``len(history)``) with its cache key."""
        spec = spec_of(rubric)
        messages = self.messages(rubric, item, history)
        choices = spec.choices if self.scores_choices else ()
        config, identity = self.config, dict(identity or self.identity())
        if self._frames[0] is not config:              # made for this very config only
            self._frames = (config, {})
        frames, place = self._frames[1], (rubric, self.rubrics[rubric].hash, len(history),
                                          tuple(sorted(identity.items())))
        if place not in frames:
            frames[place] = KeyFrame("messages", backend=config.backend, identity=identity,
                                     sampling=config.sampling, rubric=self.rubrics[rubric].hash,
                                     choices=choices, verdict_format=config.verdict_format,
                                     scoring=self.scores_choices, attempt=len(history))
        return JudgeRequest(key=frames[place].key(canonical(messages)), messages=messages, rubric=rubric,
                            verdict=spec.verdict, choices=choices, verdict_format=config.verdict_format)

    def quoted(self, rubric: str, item: Mapping[str, Any]) -> tuple[str, ...]:
        """The quoted material of one request as the judge was shown it."""
        return tuple(neutralise(item[name]) for name in spec_of(rubric).quoted if name in item)


def load_judge(name_or_path: str | Path, *, concurrency: int | None = None, endpoint: str | None = None,
               parser: str | None = None) -> Judge:
    """A judge by shipped name (``gpt-4o``) or by path to a judge.yaml / its folder; ``endpoint``
    sends it to that server, ``parser`` overrides the judge.yaml's (``final`` | ``reference``)."""
    config = load_judge_config(name_or_path)
    if concurrency is not None and concurrency < 1:
        raise CosaError(f"concurrency must be at least 1, got {concurrency}")
    if parser is not None:
        if parser not in PARSER_CHOICES:
            raise CosaError(f"unknown parser {parser!r}; choose {', '.join(PARSER_CHOICES)}")
        config = dataclasses.replace(config, parser=parser)
    paths = {name: config.rubrics.get(name) or shipped_rubric(name) for name in RUBRICS}
    rubrics = {name: load_rubric(name, path) for name, path in paths.items()}
    return Judge(config=config, rubrics=rubrics, concurrency=concurrency or config.concurrency,
                 endpoint=endpoint)
