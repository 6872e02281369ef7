"""predictions.jsonl (DESIGN.md "Predictions"): one line per benchmark item, the item's native row fields (media
omitted) plus `response`. vst also writes `benchmark` and `protocol` on each line, which lets a file of another
benchmark be refused. `score_file` re-scores a file with no model and returns the contract JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from vst.eval.benchmarks.registry import check_protocol, get_benchmark
from vst.scene.types import atomic_write_text


def read_predictions(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for every non-empty line; a bad line is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {number}: expected a JSON object")
            yield number, row


def write_predictions(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(Path(path), "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def score_file(benchmark: str, path: str | Path, protocol: str = "official") -> dict:
    """Score a predictions file: `{benchmark, protocol, overall, categories, n, n_unparsed}` (percent)."""
    module = get_benchmark(benchmark)
    check_protocol(module, protocol)
    items, seen = [], {}
    for number, row in read_predictions(path):
        index = row.get("vst_index")
        if index is not None and index in seen:  # e.g. two runs' files concatenated: each item counts once
            raise ValueError(f"{path}: line {number}: item vst_index {index} again (first on line {seen[index]}); "
                             "a predictions file holds each item once")
        seen[index] = number
        if row.get("benchmark") not in (None, benchmark):
            raise ValueError(f"{path}: line {number}: benchmark: this file holds {row['benchmark']} predictions, not {benchmark}")
        missing = [name for name in (*module.ROW_FIELDS, "response") if name not in row]
        if missing:
            raise ValueError(f"{path}: line {number}: missing field(s) {', '.join(missing)}: not a {benchmark} predictions file")
        response = row.get("response")
        if not isinstance(response, str):  # null, or a number a hand-made file stored unquoted
            response = "" if response is None else json.dumps(response)
        try:
            items.append(module.score_item(row, response, protocol))
        except (ValueError, TypeError, KeyError, IndexError) as error:  # a malformed native field
            raise ValueError(f"{path}: line {number}: {error}") from None
    if not items:
        raise ValueError(f"{path}: no predictions")
    result = module.aggregate(items, protocol)
    return {
        "benchmark": benchmark,
        "protocol": protocol,
        "overall": round(result.overall, 2),
        "categories": {name: round(value, 2) for name, value in result.categories.items()},
        "n": len(items),
        "n_unparsed": sum(item.unparsed for item in items),
    }
