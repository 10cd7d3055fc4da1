"""``load-released``: CoSAlign's published preference data as the pair rows of ``train pair``.

The hub dataset ``microsoft/CoSAlign-Train`` (splits train_bt, train_wg, dev) has one row per pair:
``system_prompt`` (the config), ``prompt``, ``chosen_response``, ``rejected_response`` and
provenance (``spec_i`` allowed categories, ``spec_j`` prompt categories, ``mode``, ``chosen_cat``,
``rejected_cat``, ``chosen_category_error_score``, ``rejected_category_error_score``). They are
kept as-is under the same names the pipeline uses where one exists.
"""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Any, Iterable

from ..errors import CosaError
from .files import ResumableWriter, progress, stable_id, write_manifest

HUB_ID = "microsoft/CoSAlign-Train"
SPLITS = ("train_bt", "train_wg", "dev")
_TEXT_FIELDS = ("system_prompt", "prompt", "chosen_response", "rejected_response")
_PROVENANCE = {"spec_i": "allowed", "spec_j": "prompt_categories", "mode": "mode",
               "chosen_cat": "chosen_categories", "rejected_cat": "rejected_categories",
               "chosen_category_error_score": "chosen_score",
               "rejected_category_error_score": "rejected_score"}


def convert_row(row: dict[str, Any], where: str, split: str) -> dict[str, Any]:
    """One released row -> one pair row (TRL conversational preference format + provenance)."""
    for name in _TEXT_FIELDS:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise CosaError(f"{where}: field {name!r} must be a non-empty string, got {value!r}; "
                            f"is this {HUB_ID} data?")
    out: dict[str, Any] = {
        "id": stable_id(split, row["system_prompt"], row["prompt"], row["chosen_response"], row["rejected_response"]),
        "prompt": [{"role": "system", "content": row["system_prompt"]}, {"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen_response"]}],
        "rejected": [{"role": "assistant", "content": row["rejected_response"]}],
        "source": f"{HUB_ID}:{split}",
    }
    for theirs, ours in _PROVENANCE.items():
        if theirs in row:
            out[ours] = row[theirs]
    return out


def convert_rows(rows: Iterable[dict[str, Any]], split: str, source: str) -> list[dict[str, Any]]:
    return [convert_row(row, f"{source}: row {n}", split) for n, row in enumerate(rows, 1)]


def load_split(split: str, revision: str | None = None, cache_dir: str | None = None) -> Any:
    """The hub split as a ``datasets.Dataset``; failure is a one-line ``CosaError``."""
    if split not in SPLITS:
        raise CosaError(f"unknown {HUB_ID} split {split!r}; expected one of {', '.join(SPLITS)}")
    import datasets
    try:
        return datasets.load_dataset(HUB_ID, split=split, revision=revision, cache_dir=cache_dir)
    except Exception as exc:  # offline, auth, missing split: the same advice applies
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CosaError(f"could not load {HUB_ID} split {split!r} from the hub ({type(exc).__name__}: {first}); "
                        "check the network and HF_HUB_OFFLINE, or build pairs locally with 'cosa-eval train pair'"
                        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", action="append", choices=SPLITS,
                        help="split to convert, repeatable (default: train_bt and train_wg)")
    parser.add_argument("--output", required=True, help="pair rows jsonl to write or resume")
    parser.add_argument("--revision", default=None, help="hub revision (commit) to pin")
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder")
    parser.add_argument("--limit", type=int, default=None, help="convert at most N rows per split")


def main(args: argparse.Namespace) -> int:
    splits = args.split or ["train_bt", "train_wg"]
    counts: Counter = Counter()
    with ResumableWriter(args.output) as writer:
        for split in splits:
            dataset = load_split(split, args.revision, args.cache_dir)
            total = len(dataset) if args.limit is None else min(args.limit, len(dataset))
            for number, row in enumerate(progress(dataset, total, f"load {split}"), 1):
                if args.limit is not None and number > args.limit:
                    break
                writer.write(convert_row(row, f"{HUB_ID}:{split}: row {number}", split))
                counts[split] += 1
        counts["written_this_run"] = writer.written
        counts["total"] = len(writer.done)
    write_manifest(args.output, "load-released", [], {"hub_id": HUB_ID, "splits": splits,
                                                      "revision": args.revision, "limit": args.limit}, dict(counts))
    print(f"load-released: {counts['total']} pairs from {HUB_ID} ({', '.join(splits)}) in {args.output}")
    return 0
