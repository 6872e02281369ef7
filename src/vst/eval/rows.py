"""Benchmark rows from a Hugging Face dataset id or a local folder, with image fields made usable: shared by the
image benchmarks' `load_rows`.

Images in a loaded row are one of: a path (str, absolute after loading from a folder), encoded bytes, or a PIL image
(rows a caller decoded itself). `image_input` turns a raw field value into one of those; Hugging Face image columns are
loaded undecoded ({bytes, path}) so rows carry bytes, never decoded pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from vst.scene.types import confined_path


def image_input(value: Any) -> Any:
    """A path (str), bytes or PIL image for one image field value; a datasets {bytes, path} dict gives its bytes."""
    if isinstance(value, dict):
        return value.get("bytes") or value.get("path")
    if isinstance(value, Path):
        return str(value)
    return value


def _read_table(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".tsv":
        return read_vlmevalkit_tsv(path)
    rows = []
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}: line {number}: invalid JSON ({error.msg})") from None
    return rows


def read_vlmevalkit_tsv(path: Path) -> list[dict]:
    """Rows of a VLMEvalKit benchmark TSV (a header line, tab-separated, `image` holding the base64-encoded picture):
    empty cells are None, `image` becomes bytes, other values stay strings (e.g. "Q12-flip", "B")."""
    import base64
    import csv
    import sys

    csv.field_size_limit(sys.maxsize)  # one cell holds a whole base64 image
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [{key: (value if value != "" else None) for key, value in row.items()}
                for row in csv.DictReader(stream, delimiter="\t")]
    # VLMEvalKit saves space by storing, for a repeated picture, the `index` of the row that holds it (a short string)
    # A multi-image row (MMMU) holds a Python list literal of base64 strings.
    pictures = {row.get("index"): row.get("image") for row in rows}
    for number, row in enumerate(rows, start=2):
        image = row.get("image")
        if image is None:
            continue
        if len(image) <= 64:
            image = pictures.get(image)
            if image is None or len(image) <= 64:
                raise ValueError(f"{path}: line {number}: image: refers to index {row['image']!r}, which holds no image")
        try:
            if image.startswith("["):
                import ast

                row["image"] = [base64.b64decode(each, validate=True) for each in ast.literal_eval(image)]
            else:
                row["image"] = base64.b64decode(image, validate=True)
        except (ValueError, SyntaxError, TypeError):
            raise ValueError(f"{path}: line {number}: image: not base64 (or a list of base64 strings)") from None
    return rows


def _resolve_media(row: dict, folder: Path, media_fields: Sequence[str], item: str) -> dict:
    """Relative image paths -> absolute paths under `folder`; a missing file is an error naming item and path.
    A field may hold one image or a list of them (multi-image benchmarks such as MMSI-Bench)."""

    def resolve(name: str, value):
        value = image_input(value)
        if isinstance(value, str):
            try:
                path = folder / confined_path(value)
            except ValueError as error:
                raise ValueError(f"{folder}: item {item}: {name}: {error}") from None
            if not path.is_file():
                raise FileNotFoundError(f"{folder}: item {item}: {name}: image file not found: {path}")
            value = str(path)
        return value

    for name in media_fields:
        if name not in row:
            continue
        value = row[name]
        row[name] = [resolve(name, each) for each in value] if isinstance(value, (list, tuple)) else resolve(name, value)
    return row


def load_local_rows(
    folder: Path, *, patterns: Sequence[str], media_fields: Sequence[str], id_field: str, limit: int | None = None
) -> list[dict]:
    """Rows of the first glob pattern (relative to `folder`) that matches any .jsonl/.parquet file, files in name
    order. Patterns are tried in turn so that a Hugging Face snapshot (several splits side by side) reads one split."""
    for pattern in patterns:
        files = sorted(path for path in folder.glob(pattern) if path.suffix in (".jsonl", ".parquet", ".tsv"))
        if files:
            break
    else:
        raise FileNotFoundError(f"{folder}: no rows file (looked for {', '.join(patterns)})")
    rows = [row for path in files for row in _read_table(path)][:limit]
    return [_resolve_media(row, folder, media_fields, str(row.get(id_field, index))) for index, row in enumerate(rows)]


def load_hub_rows(
    dataset_id: str,
    *,
    configs: Sequence[str | None],
    split: str,
    media_fields: Sequence[str],
    revision: str | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Rows of `split` for each config in turn (until `limit`), image columns kept as encoded bytes."""
    import datasets

    rows: list[dict] = []
    for config in configs:
        remaining = None if limit is None else limit - len(rows)
        if remaining is not None and remaining <= 0:
            break
        dataset = datasets.load_dataset(dataset_id, name=config, split=split, revision=revision)
        if remaining is not None:
            dataset = dataset.select(range(min(remaining, len(dataset))))
        for name in media_fields:
            if name in dataset.column_names:
                dataset = dataset.cast_column(name, datasets.Image(decode=False))
        for row in dataset:
            rows.append({**row, **{name: image_input(row[name]) for name in media_fields if name in row}})
    return rows


def is_local(source: str | Path) -> bool:
    return Path(source).is_dir()
