"""A judge definition: ``judges/<name>/judge.yaml`` loaded and validated into :class:`JudgeConfig`."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CosaError, did_you_mean
from .registry import backend_names, unknown_backend_message

JUDGE_FILE = "judge.yaml"
DEFAULT_JUDGE = "gpt-4o"
JUDGE_ENV = "COSA_JUDGE"
RUBRIC_NAMES = ("helpfulness", "compliance", "categories")
MAX_NAME_BYTES = 200                     # "cosa_judged_<name>" fits a file name (255 bytes)


def default_judge(chosen: str | None = None) -> str:
    """The judge to use: ``chosen``, else ``$COSA_JUDGE``, else gpt-4o (the paper's judge)."""
    return chosen or os.environ.get(JUDGE_ENV) or DEFAULT_JUDGE
_FIELDS = {"description", "backend", "model", "sampling", "concurrency", "batch_size", "reasks",
           "rubrics", "prices", "backend_options", "logit_scoring", "name", "verdict_format", "parser"}
VERDICT_FORMATS = ("free", "json_schema", "logprobs")
PARSERS = ("final", "reference")
# backend_options that any backend may take, and what they must be: (kind, minimum, inclusive)
_NUMBER_OPTIONS: dict[str, tuple[type, float, bool]] = {
    "timeout_s": (float, 0, False), "max_retries": (int, 0, True), "backoff_base_s": (float, 0, True),
    "backoff_max_s": (float, 0, True), "start_concurrency": (int, 1, True),
    "rationale_chars": (int, 1, True), "top_logprobs": (int, 1, True)}


@dataclass(frozen=True)
class JudgeConfig:
    """Everything a judge.yaml says; ``path`` is the file it came from (for error messages)."""

    name: str
    path: Path
    backend: str
    model: str
    sampling: dict[str, Any] = field(default_factory=dict)
    backend_options: dict[str, Any] = field(default_factory=dict)
    rubrics: dict[str, Path] = field(default_factory=dict)
    prices: tuple[float, float] | None = None     # USD per 1M (input, output) tokens
    concurrency: int = 8
    batch_size: int = 1                           # requests per Backend.complete() call
    reasks: int = 2
    logit_scoring: bool = False
    verdict_format: str = "free"                  # "free" | "json_schema" | "logprobs"
    parser: str = "final"                         # "final" | "reference"
    description: str = ""


def shipped_judges() -> list[str]:
    """Names of the judges shipped under ``judges/``."""
    from .. import judges_dir
    return sorted(p.parent.name for p in judges_dir().glob(f"*/{JUDGE_FILE}"))


def shipped_rubric(name: str) -> Path:
    """Path of a shipped rubric template (used when a judge.yaml leaves one out)."""
    from .. import judges_dir
    return judges_dir() / "rubrics" / f"{name}.jinja"


def resolve_judge_path(name_or_path: str | Path) -> Path:
    """The judge.yaml for a shipped judge name, a folder holding one, or a yaml file."""
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir() and (path / JUDGE_FILE).is_file():
        return path / JUDGE_FILE
    names = shipped_judges()
    if text in names:
        from .. import judges_dir
        return judges_dir() / text / JUDGE_FILE
    if path.suffix in (".yaml", ".yml") or "/" in text:
        raise CosaError(f"judge file {text} does not exist; pass a judge name ({', '.join(names)}) "
                        "or the path of a judge.yaml")
    raise CosaError(f"unknown judge {text!r}{did_you_mean(text, names)}; shipped judges: "
                    f"{', '.join(names)}; or pass the path of a judge.yaml")


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CosaError(f"{path}: not UTF-8 text (byte {exc.start + 1}); is it a binary file? give a judge.yaml") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise CosaError(f"{path}:{line} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise CosaError(f"{path}: expected a mapping of judge fields, got {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise CosaError(f"{path}: unknown field {unknown[0]!r}{did_you_mean(unknown[0], sorted(_FIELDS))}; "
                        f"known fields: {', '.join(sorted(_FIELDS))}")
    return data


def _typed(path: Path, data: dict[str, Any], key: str, kind: type | tuple, default: Any) -> Any:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise CosaError(f"{path}: field {key!r} must be a number, got {value!r}")
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else "number"
        raise CosaError(f"{path}: field {key!r} must be a {want}, got {value!r}")
    return value


def _name(path: Path, data: dict[str, Any]) -> str:
    """The judge's name (default: its folder's), which names its output folder ``cosa_judged_<name>``:
    one path component, printable, no separator."""
    name = _typed(path, data, "name", str, path.parent.name)
    if (not name or name != name.strip() or name in (".", "..") or "/" in name or "\\" in name
            or not name.isprintable() or len(name.encode("utf-8")) > MAX_NAME_BYTES):
        raise CosaError(f"{path}: field 'name' is {name!r}, not a judge name; give a name without path separators "
                        f"(/ or \\), line breaks, control characters or outer spaces, not '.' or '..', at most "
                        f"{MAX_NAME_BYTES} bytes (it names the output folder cosa_judged_<name>)")
    return name


def _positive(path: Path, key: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise CosaError(f"{path}: field {key!r} must be at least {minimum}, got {value}")
    return value


def _rubrics(path: Path, given: dict[str, Any]) -> dict[str, Path]:
    unknown = sorted(set(given) - set(RUBRIC_NAMES))
    if unknown:
        raise CosaError(f"{path}: rubrics.{unknown[0]} is not a rubric; expected {', '.join(RUBRIC_NAMES)}")
    rubrics: dict[str, Path] = {}
    for name in RUBRIC_NAMES:
        if name not in given:
            rubrics[name] = shipped_rubric(name)
            continue
        if not isinstance(given[name], str):
            raise CosaError(f"{path}: rubrics.{name} must be a file path, got {given[name]!r}")
        file = (path.parent / given[name]).resolve()
        if not file.is_file():
            raise CosaError(f"{path}: rubrics.{name} points to {file}, which does not exist; "
                            "fix the path (relative to the judge.yaml) or leave it out to use the shipped rubric")
        rubrics[name] = file
    return rubrics


def _prices(path: Path, given: Any) -> tuple[float, float] | None:
    if given is None:
        return None
    ok = isinstance(given, dict) and set(given) == {"input", "output"} and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and math.isfinite(v)
        for v in given.values())
    if not ok:
        raise CosaError(f"{path}: field 'prices' must be {{input: USD, output: USD}} per 1M tokens, "
                        f"both numbers >= 0, got {given!r}")
    return float(given["input"]), float(given["output"])


def _choice(path: Path, data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = data.get(key, allowed[0])
    if value not in allowed:
        raise CosaError(f"{path}: field {key!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _backend_options(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The backend's options; the shared numeric ones are checked here, naming file and field."""
    options = dict(_typed(path, data, "backend_options", dict, {}) or {})
    for key, (kind, minimum, inclusive) in _NUMBER_OPTIONS.items():
        if key not in options:
            continue
        value = options[key]
        fits = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
        if fits and kind is float:
            fits = math.isfinite(value)
        if not fits or value < minimum or (value == minimum and not inclusive):
            want = ("an integer" if kind is int else "a number") + (" >= " if inclusive else " > ")
            raise CosaError(f"{path}: field 'backend_options.{key}' must be {want}{minimum:g}, got {value!r}")
    return options


def parse_judge_config(path: Path, data: dict[str, Any]) -> JudgeConfig:
    """Validate the fields of one judge.yaml; every error names the file and the field."""
    backend = _typed(path, data, "backend", str, "")
    if backend not in backend_names():
        raise CosaError(f"{path}: field 'backend': {unknown_backend_message(backend)}")
    model = _typed(path, data, "model", str, "")
    if not model.strip():
        raise CosaError(f"{path}: field 'model' is required (the judge model's name)")
    return JudgeConfig(
        name=_name(path, data), path=path, backend=backend, model=model,
        sampling=dict(_typed(path, data, "sampling", dict, {})),
        backend_options=_backend_options(path, data),
        rubrics=_rubrics(path, _typed(path, data, "rubrics", dict, {}) or {}),
        prices=_prices(path, data.get("prices")),
        concurrency=_positive(path, "concurrency", _typed(path, data, "concurrency", int, 8)),
        batch_size=_positive(path, "batch_size", _typed(path, data, "batch_size", int, 1)),
        reasks=_positive(path, "reasks", _typed(path, data, "reasks", int, 2), minimum=0),
        logit_scoring=_typed(path, data, "logit_scoring", bool, False),
        description=_typed(path, data, "description", str, ""),
        verdict_format=_choice(path, data, "verdict_format", VERDICT_FORMATS),
        parser=_choice(path, data, "parser", PARSERS),
    )


def load_judge_config(name_or_path: str | Path) -> JudgeConfig:
    """Find and validate a judge by shipped name or by path."""
    path = resolve_judge_path(name_or_path).resolve()
    return parse_judge_config(path, _read_yaml(path))
