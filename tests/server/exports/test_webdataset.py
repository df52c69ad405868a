"""WebDataset shards: read back by webdataset and Hugging Face datasets, safe to extract, and
byte-identical when a killed export is resumed."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update

from server.captions.tokens import context_tokens
from server.core import runtime
from server.exports import service, writers
from server.exports.schemas import ExportOptions
from server.orm.exports import Export, ExportPart
from tests.server.exports.conftest import REVIEWED, run_export, sqlite_only, start_here


def _shards(out: Path) -> list[str]:
    return sorted(str(p) for p in out.glob("*.tar"))


@sqlite_only
def test_shards_read_back_with_webdataset_and_hugging_face_datasets(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    import datasets
    import pyarrow.parquet as pq
    import webdataset as wds

    out = tmp_path / "wds"
    export = run_export(reviewed["project"]["id"], "webdataset", out, options=ExportOptions(shard_size=2))
    assert export.status == "done", export.error
    samples = list(wds.WebDataset(_shards(out), shardshuffle=False).decode("pil"))
    assert [s["__key__"] for s in samples] == [f"{i:010d}" for i in reviewed["reviewed"]]
    for sample in samples:
        assert set(sample) - {"__key__", "__url__", "__local_path__"} == {"jpg", "txt", "json"}
        assert isinstance(sample["jpg"], Image.Image) and sample["jpg"].size == (384, 512)
        assert sample["txt"] == sample["json"]["caption"] and sample["txt"].startswith("a ")
        assert context_tokens(sample["txt"]) <= 77
        said = [entry for entry in sample["json"]["provenance"] if "top.color" in entry["labels"]]
        assert len(said) == 1 and said[0]["decided_by"] == "person" and said[0]["state"] == "verified"
        assert said[0]["model_version"]
        assert isinstance(sample["json"]["regions"]["top"]["color"], str)
        labelled = {key for entry in sample["json"]["provenance"] for key in entry["labels"]}
        assert labelled == {f"{r}.{k}" for r, said_ in sample["json"]["regions"].items() for k in said_}
        assert list(sample["json"]["groups"])[:2] == ["identity", "body_shape"]
    # The per-shard parquet index points at each sample's image inside the tar.
    for shard in _shards(out):
        index = pq.read_table(shard.replace(".tar", ".parquet")).to_pylist()
        raw = Path(shard).read_bytes()
        with tarfile.open(shard) as tar:
            for row in index:
                member = tar.getmember(row["image"])
                assert member.offset == row["offset"] and member.size == row["size"]
                assert raw[member.offset_data : member.offset_data + 2] == b"\xff\xd8"

    hf = datasets.load_dataset(
        "webdataset", data_files={"train": _shards(out)}, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert hf.num_rows == REVIEWED
    assert sorted(hf.column_names) == ["__key__", "__url__", "jpg", "json", "txt"]
    assert hf[0]["txt"] == samples[0]["txt"] and hf[0]["jpg"].size == (384, 512)
    assert hf[0]["json"]["subject_id"] == reviewed["reviewed"][0]


@sqlite_only
def test_every_shard_extracts_inside_its_target_with_the_data_filter(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "wds"
    run_export(reviewed["project"]["id"], "webdataset", out, options=ExportOptions(shard_size=1))
    assert len(_shards(out)) == REVIEWED
    for shard in _shards(out):
        target = tmp_path / "extract" / Path(shard).stem
        target.mkdir(parents=True)
        with tarfile.open(shard) as tar:
            members = tar.getmembers()
            assert all(m.isreg() and "/" not in m.name and ".." not in m.name for m in members)
            assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members)
            tar.extractall(target, filter="data")
        extracted = [p for p in (tmp_path / "extract").rglob("*") if p.is_file()]
        assert all(p.resolve().is_relative_to(target.resolve()) for p in extracted if p.parent == target)
        assert sorted(p.name for p in target.iterdir()) == sorted(m.name for m in members)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_killed_export_resumed_keeps_complete_parts_and_writes_identical_files(
    reviewed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "wds"
    real = writers.PART_WRITERS["webdataset"]

    def dies_on_the_second_part(ctx: Any, index: int, records: Any) -> Any:
        if index == 1:
            # The worker dies mid-write: a temporary file is left behind, nothing is renamed.
            (out / "00001.tar.tmp").write_bytes(b"half a shard")
            raise RuntimeError("worker killed")
        return real(ctx, index, records)

    monkeypatch.setitem(writers.PART_WRITERS, "webdataset", dies_on_the_second_part)
    run_export(reviewed["project"]["id"], "webdataset", out, options=ExportOptions(shard_size=2))
    with runtime.database().session_scope() as session:
        export = session.scalars(select(Export)).one()
        export_id = export.id
        assert export.status == "failed" and "worker killed" in (export.error or "")
    assert not (out / "manifest.json").exists()  # nothing looks complete
    assert not (out / "00001.tar").exists()
    kept = (out / "00000.tar").stat().st_mtime_ns

    monkeypatch.setitem(writers.PART_WRITERS, "webdataset", real)
    with runtime.database().session_scope() as session:
        service.resume(session, service.get_by_id(session, export_id))
    with runtime.database().session_scope() as session:
        assert service.get_by_id(session, export_id).status == "done"
    assert (out / "00000.tar").stat().st_mtime_ns == kept  # verified by checksum and kept
    resumed = _files(out)
    assert "00001.tar" in resumed and "00001.tar.tmp" not in resumed

    # The same snapshot written again from nothing gives the same bytes, file for file.
    for path in out.rglob("*"):
        if path.is_file():
            path.unlink()
    with runtime.database().session_scope() as session:
        session.execute(update(ExportPart).where(ExportPart.export_id == export_id).values(status="pending"))
        session.execute(update(Export).where(Export.id == export_id).values(status="failed"))
    with runtime.database().session_scope() as session:
        service.resume(session, service.get_by_id(session, export_id))
    assert _files(out) == resumed


@sqlite_only
def test_a_part_whose_file_was_damaged_is_rewritten_on_resume(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "wds"
    export = run_export(reviewed["project"]["id"], "webdataset", out, options=ExportOptions(shard_size=2))
    good = (out / "00000.tar").read_bytes()
    (out / "00000.tar").write_bytes(good[:-512])
    with runtime.database().session_scope() as session:
        session.execute(update(Export).where(Export.id == export.id).values(status="failed"))
    with runtime.database().session_scope() as session:
        service.resume(session, service.get_by_id(session, export.id))
    assert (out / "00000.tar").read_bytes() == good
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        assert {json.loads(tar.extractfile(m).read())["key"] for m in tar if m.name.endswith(".json")}  # type: ignore[union-attr]


@sqlite_only
def test_a_shard_streams_to_its_file_without_being_held_in_memory(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    """A shard of three 16 MB images (WebDataset shards are commonly a few GB) is written while
    the part holds about one image: the archive goes out sample by sample, not built whole."""
    import hashlib
    import tracemalloc

    image_bytes = 16 << 20
    read: list[str] = []

    def large_image(key: str) -> bytes:
        read.append(key)
        return runtime.storage().get(key).ljust(image_bytes, b"\0")  # a fresh object per read

    out = tmp_path / "wds"
    export_id = start_here(reviewed["project"]["id"], "webdataset", out)
    service.preload()  # what a part imports on first use (pandas, for pyarrow) is not the shard
    tracemalloc.start()
    try:
        service.run_here(runtime.database(), large_image, export_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(read) == REVIEWED
    shard = (out / "00000.tar").read_bytes()
    assert len(shard) > REVIEWED * image_bytes
    assert peak < 2 * image_bytes, f"peak {peak >> 20} MB while writing a {len(shard) >> 20} MB shard"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["00000.tar"]["sha256"] == hashlib.sha256(shard).hexdigest()
    with tarfile.open(out / "00000.tar") as tar:
        images = [m for m in tar if m.name.endswith(".jpg")]
        assert [m.size for m in images] == [image_bytes] * REVIEWED


@sqlite_only
def test_a_shard_whose_image_is_gone_fails_the_export_and_leaves_no_partial_file(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    from server.orm import Image as ImageRow
    from server.orm import Subject

    storage = runtime.storage()
    with runtime.database().session_scope() as session:
        key = session.scalar(
            select(ImageRow.storage_key)
            .join(Subject, Subject.image_id == ImageRow.id)
            .where(Subject.id == reviewed["reviewed"][1])
        )
    assert key is not None
    image = storage.get(key)
    storage.delete(key)  # the shard's second sample: its temporary file is open by then
    out = tmp_path / "wds"
    export = run_export(reviewed["project"]["id"], "webdataset", out)
    assert export.status == "failed" and export.error is not None
    assert "part 0: FileNotFoundError" in export.error, export.error
    assert sorted(p.name for p in out.iterdir()) == []  # no shard, and no temporary one

    storage.put(key, image)
    with runtime.database().session_scope() as session:
        service.resume(session, service.get_by_id(session, export.id))
    with runtime.database().session_scope() as session:  # the resumed parts ran inline on commit
        resumed = service.get_by_id(session, export.id)
        assert resumed.status == "done" and resumed.counts["samples"] == REVIEWED
    assert sorted(p.name for p in out.iterdir()) == ["00000.parquet", "00000.tar", "manifest.json"]
