"""Parquet shards in VST's schema: one writer, one reader, atomic files, per-scene parts for resume.

A shard `shard-00003-of-00008.parquet` is assembled from per-scene parts in `.parts/shard-00003-of-00008/`. Each
part is written to a temporary name and renamed, so an interrupted run leaves only whole parts; `--resume`
keeps them and generates the rest. The shard and then its manifest are written last. Images are encoded bytes
(JPEG; a video is its mp4 bytes in images[0], as VST stores them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from vst.data.sample import Sample
from vst.common.storage import Store
from vst.scene.types import confined_path

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("data_source", pa.string()),
        ("type", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("meta_info", pa.string()),
        ("skill", pa.string()),
        ("modality", pa.string()),
        ("answer", pa.string()),
        ("reward", pa.string()),
    ]
)
ROW_GROUP_SIZE = 64  # rows carry images: keep row groups small enough to stream


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}"


def write_samples(path: str | Path, samples: Iterable[Sample]) -> int:
    """Write samples to `path` atomically; returns the row count."""
    return write_table(path, pa.Table.from_pylist([s.to_row() for s in samples], schema=SCHEMA))


def write_table(path: str | Path, table: pa.Table) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, temp, row_group_size=ROW_GROUP_SIZE, compression="zstd")
    os.replace(temp, path)
    return table.num_rows


def open_shard(path: str | Path) -> pq.ParquetFile:
    """Open a shard (ours or a released VST parquet) for reading; errors name the file and the missing column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        shard = pq.ParquetFile(path)
    except pa.ArrowInvalid as error:
        raise ValueError(f"{path}: not a parquet file ({error})") from None
    missing = [name for name in ("id", "conversations") if name not in shard.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: {missing[0]}: missing column (expected VST's schema: {', '.join(SCHEMA.names[:6])})")
    return shard


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """`file_sha256`, once per version of a file in this process (training reads its shard list more than once)."""
    return file_sha256(path)


def verify_shard(path: str | Path) -> bool:
    """Check a shard against the sha256 its manifest (`<name>.manifest.json` beside it) recorded; False when there
    is no manifest to check against. A shard changed or damaged after it was written is an error naming both files."""
    path = Path(path)
    manifest = path.with_name(path.name.removesuffix(".parquet") + ".manifest.json")
    if not manifest.is_file():
        return False
    try:
        expected = json.loads(manifest.read_text()).get("sha256")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{manifest}: not valid JSON") from None
    if expected is None:
        return False
    stat = path.stat()
    if _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns) != expected:
        raise ValueError(f"{path}: sha256 differs from {manifest.name} (changed or damaged after it was written); "
                         "regenerate it or remove the manifest")
    return True


def read_samples(paths: str | Path | Iterable[str | Path]) -> Iterator[Sample]:
    """Samples from one or more parquet files, in order, read one row group at a time (a shard never has to fit in
    memory); rows of released VST data load unchanged, and a bad row's error names its file and row."""
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        index = 0
        for batch in open_shard(path).iter_batches(batch_size=ROW_GROUP_SIZE):
            for row in batch.to_pylist():
                where = f"{path}: row {index}"
                yield _embed_media(Sample.from_row(row, where), Path(path).parent, where)
                index += 1


def _embed_media(sample: Sample, folder: Path, where: str) -> Sample:
    """Images given only by path (rows other tools wrote) are read here, relative to the shard's folder and confined
    to it, so nothing downstream opens a path a shard names (`/etc/passwd`, `../..`)."""
    for number, media in enumerate(sample.images):
        if media.bytes is not None:
            continue
        try:
            file = folder / confined_path(media.path)
        except ValueError as error:
            raise ValueError(f"{where}: images[{number}].path: {error}") from None
        if not media.path or not file.is_file():
            raise ValueError(f"{where}: images[{number}]: no bytes, and no file at {file}")
        media.bytes = file.read_bytes()
    return sample


def concatenate(parts: list[Path], out: Path) -> int:
    tables = [pq.read_table(part, schema=SCHEMA) for part in parts]
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return write_table(out, table)


def start_parts(store: Store, parts: tuple[str, ...], manifest: str, fingerprint: str, resume: bool, what: str,
                made_from: str) -> None:
    """Before a resumable run writes per-scene parts under `parts` of `store`: refuse to redo a finished `what` (its
    `manifest` exists) unless resuming, refuse parts another configuration (`made_from`) left, then stamp the parts
    folder."""
    if store.exists(manifest) and not resume:
        raise ValueError(f"{store.display(manifest)}: this {what} exists; pass --resume to continue it or choose "
                         "another --out")
    if store.exists(*parts, "run.json") and json.loads(store.read_text(*parts, "run.json"))["fingerprint"] != fingerprint:
        raise ValueError(f"{store.display(*parts, 'run.json')}: fingerprint: parts from another {made_from}; choose "
                         "another --out")
    store.makedirs(*parts)
    store.write_text(json_text({"fingerprint": fingerprint}), *parts, "run.json")


def json_text(payload: dict) -> str:
    return json.dumps(payload, indent=1, sort_keys=True) + "\n"
