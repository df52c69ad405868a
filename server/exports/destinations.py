"""Where export files go: a local folder or S3-compatible storage, through fsspec.

Every file is written under a temporary name and renamed when complete, so a reader never sees
a half-written file under its final name. Credentials come from the environment (AWS_* for S3);
an export's options may name a non-secret `endpoint_url`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

TMP_SUFFIX = ".tmp"
# Chunks are written and hashed in batches of about this size: a whole shard joined into one
# buffer and written at once cost about twice the CPU (its copy, and one very large write).
BATCH_BYTES = 1 << 20


class Destination:
    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        options: dict[str, Any] = {}
        if url.startswith("s3://") and endpoint_url:
            options["client_kwargs"] = {"endpoint_url": endpoint_url}
        fs, root = fsspec.core.url_to_fs(url, **options)
        self.fs: AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def write(self, name: str, data: bytes | Iterable[bytes]) -> dict[str, Any]:
        """Write `name` atomically from its bytes, or its chunks in order (an iterator streams:
        a file holds about GROUP_BYTES in memory at once); returns {"sha256", "bytes"}. If
        writing fails, or the chunks' iterator raises, the temporary file is removed and
        nothing is left under the final name."""
        final = self.path(name)
        tmp = final + TMP_SUFFIX
        if self.local:
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        chunks = (data,) if isinstance(data, bytes) else data
        try:
            sha256, size = self._write_temporary(tmp, chunks)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(tmp)
            raise
        self.fs.mv(tmp, final)
        return {"sha256": sha256, "bytes": size}

    def _write_temporary(self, tmp: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        """The chunks written to `tmp`; their sha256 and size."""
        digest = hashlib.sha256()
        size = 0
        if self.local:
            # Straight to the file, in groups of chunks (writev): fsspec's and Python's buffers,
            # or joining the chunks, each copied every byte once more.
            with open(tmp, "wb", buffering=0) as fh:
                update = digest.update
                for group, length in _groups(chunks):
                    for chunk in group:
                        update(chunk)
                    _write_all(fh.fileno(), group, length)
                    size += length
                    del group, chunk  # written: free its chunks before the next group is read
        else:
            with self.fs.open(tmp, "wb") as fh:
                for batch in _batches(chunks):
                    fh.write(batch)
                    digest.update(batch)
                    size += len(batch)
        return digest.hexdigest(), size

    def read(self, name: str) -> bytes:
        data = self.fs.cat_file(self.path(name))
        assert isinstance(data, bytes)
        return data

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self.path(name)))

    def sha256(self, name: str) -> str | None:
        """The file's checksum, or None when it is not there."""
        digest = hashlib.sha256()
        try:
            with self.fs.open(self.path(name), "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def verified(self, files: dict[str, Any]) -> bool:
        """Whether every file is there with its recorded checksum."""
        return all(self.sha256(name) == meta["sha256"] for name, meta in files.items())


def _batches(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`chunks` regrouped: small ones joined up to about BATCH_BYTES, a large one as it is."""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        if len(chunk) >= BATCH_BYTES:
            if pending:
                yield b"".join(pending)
                pending, size = [], 0
            yield chunk
            continue
        pending.append(chunk)
        size += len(chunk)
        if size >= BATCH_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


_GROUP = 512  # chunks per writev at most: well under any system's IOV_MAX
# Bytes per writev, about: what a streamed file holds in memory at once (one chunk may be
# larger), and what is hashed shortly before it is written, while it is still in cache.
GROUP_BYTES = 1 << 20


def _groups(chunks: Iterable[bytes]) -> Iterator[tuple[list[bytes], int]]:
    """`chunks` in groups for one writev each, with their sizes; empty chunks left out."""
    group: list[bytes] = []
    size = 0
    for chunk in chunks:
        if chunk:
            group.append(chunk)
            size += len(chunk)
        if len(group) == _GROUP or size >= GROUP_BYTES:
            yield group, size
            group, size = [], 0
    if group:
        yield group, size


def _write_all(fd: int, chunks: list[bytes], size: int) -> None:
    """writev until all `size` bytes of `chunks` are written (a write may stop short)."""
    written = os.writev(fd, chunks)
    if written == size:
        return
    rest = b"".join(chunks)[written:]
    while rest:
        rest = rest[os.write(fd, rest) :]
