"""Where a job's outputs go: a local folder, or an fsspec URL (`s3://bucket/vst-p`, `gs://…`, `az://…`, `file://…`).

A cluster run (`vst data generate --ray … --out s3://…`) needs storage every node can write to; object stores are
that storage on most clusters. `Store(root)` gives the engine one way to write there:

- `with store.local_file("a/b.parquet") as path:` — write `path` locally; when the block ends without an error the
  file is in place whole. Local roots: `path` is the destination itself (the writers already write a temporary name
  and rename it). URLs: a temporary local file, uploaded as one object (an object store shows an object only once
  its upload completes, so readers never see half a file), or put under a temporary name and renamed on `file://`.
- `write_text`, `read_text`, `exists`, `fetch` (a local copy to read) and `display` (the name for messages).

Local paths never go through fsspec, so a run on a local or shared file system behaves (and writes) exactly as it
did before URLs were accepted. Remote protocols need their fsspec package installed (s3fs, gcsfs, adlfs); the error
says which.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vst.scene.types import atomic_write_text


def is_url(value: str | Path) -> bool:
    return isinstance(value, str) and "://" in value


class Store:
    def __init__(self, root: str | Path):
        self.root = str(root).rstrip("/") if is_url(root) else Path(root)
        self._fs = None

    @property
    def is_url(self) -> bool:
        return isinstance(self.root, str)

    def __getstate__(self) -> dict:  # workers and Ray tasks rebuild the file system object themselves
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.root, self._fs = state["root"], None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def fs(self):
        if self._fs is None:
            import fsspec

            protocol = self.root.split("://", 1)[0]
            try:
                self._fs, self._path = fsspec.core.url_to_fs(self.root)
            except ImportError as error:
                raise RuntimeError(f"--out {self.root}: the {protocol}:// file system needs a package that is not "
                                   f"installed ({error}); e.g. pip install s3fs (s3://), gcsfs (gs://), adlfs (az://)") from None
            except ValueError as error:
                raise ValueError(f"--out {self.root}: {error}") from None
        return self._fs

    def _remote(self, *parts: str) -> str:
        self.fs  # noqa: B018 - resolves self._path
        return "/".join([self._path.rstrip("/"), *parts])

    def local(self, *parts: str) -> Path:
        """The local path of a file under a local root (an error for a URL: use `local_file` or `fetch`)."""
        if self.is_url:
            raise TypeError(f"{self.root}: not a local folder")
        return self.root.joinpath(*parts)

    def display(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if self.is_url else str(self.root.joinpath(*parts))

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self._remote(*parts)) if self.is_url else self.local(*parts).exists()

    def read_text(self, *parts: str) -> str:
        if self.is_url:
            return self.fs.cat_file(self._remote(*parts)).decode()
        return self.local(*parts).read_text()

    def write_text(self, text: str, *parts: str) -> None:
        if not self.is_url:
            return atomic_write_text(self.local(*parts), text)
        with self.local_file(*parts) as path:
            path.write_text(text)

    def makedirs(self, *parts: str) -> None:
        if self.is_url:
            self.fs.makedirs(self._remote(*parts), exist_ok=True)
        else:
            self.local(*parts).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def local_file(self, *parts: str) -> Iterator[Path]:
        """A local path to write the file `parts` at; it is in place, whole, once the block ends without an error."""
        if not self.is_url:
            path = self.local(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            yield path
            return
        folder = Path(tempfile.mkdtemp(prefix="vst-upload-"))
        try:
            path = folder / parts[-1]
            yield path
            target = self._remote(*parts)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            if "file" in _protocols(self.fs) or "local" in _protocols(self.fs):  # a file system: temp name + rename
                temp = f"{target}.tmp-{os.getpid()}"
                self.fs.put_file(str(path), temp)
                self.fs.mv(temp, target)
            else:  # an object store: one upload is one object, visible only when complete
                self.fs.put_file(str(path), target)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def fetch(self, paths: list[tuple[str, ...]]) -> Iterator[list[Path]]:
        """Local paths to read the files `paths` (each a tuple of parts) from: themselves under a local root, copies
        in a temporary folder (removed after the block) for a URL."""
        if not self.is_url:
            yield [self.local(*parts) for parts in paths]
            return
        folder = Path(tempfile.mkdtemp(prefix="vst-download-"))
        try:
            local = []
            for i, parts in enumerate(paths):
                local.append(folder / f"{i:06d}-{parts[-1]}")
                self.fs.get_file(self._remote(*parts), str(local[-1]))
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
