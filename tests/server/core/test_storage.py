"""The local blob store: what is put is what is got back, whatever the file's size says."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from server.core import storage
from server.core.storage import LocalStorage


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) + 3])
def test_a_blob_reads_back_as_written(tmp_path: Path, size: int) -> None:
    store = LocalStorage(tmp_path)
    data = os.urandom(size)
    store.put("images/ab/blob.jpg", data)
    assert store.get("images/ab/blob.jpg") == data


@pytest.mark.parametrize("told", [0, 10, 99, 5000], ids=["grew-from-0", "grew", "grew-by-1", "shrank"])
def test_a_blob_whose_size_changed_after_fstat_is_read_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, told: int
) -> None:
    store = LocalStorage(tmp_path)
    data = os.urandom(100)
    store.put("images/ab/blob.jpg", data)
    real = os.fstat

    def stale_size(fd: int) -> Any:  # the size as it was before the file changed
        return SimpleNamespace(st_size=told) if fd > 2 else real(fd)

    monkeypatch.setattr(storage.os, "fstat", stale_size)
    got = store.get("images/ab/blob.jpg")
    monkeypatch.undo()
    assert got == data


def test_a_missing_blob_or_a_bad_key_is_an_error(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    with pytest.raises(FileNotFoundError):
        store.get("images/none.jpg")
    with pytest.raises(ValueError, match="invalid storage key"):
        store.get("../secret")
