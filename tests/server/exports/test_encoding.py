"""The part writers' fast paths write exactly what the reference builders do: tar members as
`tarfile` writes them, sample documents as `json.dumps` writes `attributes_document`."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

from server.exports import records as records_module
from server.exports.destinations import BATCH_BYTES, Destination
from server.exports.records import (
    AttributesEncoder,
    ExportRecord,
    LabelValue,
    attributes_document,
    build_records,
    document_encoder,
    record_of,
)
from server.exports.repository import SubjectRow
from server.exports.writers import TarBuilder, indented_list
from server.taxonomy.format import TaxonomySpec, load_default


def _tarfile_archive(members: list[tuple[str, bytes]], mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("sizes", [[], [0], [1, 511, 512, 513], [10240, 20000, 3], [9, 1023] * 9])
def test_tar_builder_writes_the_bytes_tarfile_writes(sizes: list[int]) -> None:
    rng = random.Random(len(sizes))
    members = [(f"{n:010d}.{ext}", rng.randbytes(size)) for n, size in enumerate(sizes) for ext in ("jpg",)]
    members.append(("x" * 100, b"the longest name a USTAR header holds"))
    builder = TarBuilder(1_790_000_000)
    offsets = [builder.add(name, data) for name, data in members]
    archive = b"".join(builder.close())
    assert archive == _tarfile_archive(members, 1_790_000_000)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert [m.offset for m in tar.getmembers()] == offsets


def test_tar_builder_refuses_a_name_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="longer than 100"):
        TarBuilder(0).add("y" * 101, b"")


def _value(spec: TaxonomySpec, full_key: str, rng: random.Random) -> Any:
    category = spec.category(full_key)
    if category.kind == "text":
        return rng.choice(["a note", 'café « crème » "quoted" \\ back\nline', "日本語 😀", ""])
    if category.kind == "boolean":
        return rng.choice([True, False, 1, None])  # 1: a value the memo must not take for True
    keys = [v.key for v in category.values]
    if category.kind == "multi":
        return rng.sample(keys, k=rng.randint(0, min(3, len(keys))))
    return rng.choice([*keys, "not-a-key"])


def _records(spec: TaxonomySpec, n: int) -> list[ExportRecord]:
    rng = random.Random(7)
    categories = spec.categories()
    records = []
    for i in range(n):
        chosen = sorted(rng.sample(range(len(categories)), k=rng.randint(0, len(categories))))
        labels = {
            categories[c].full_key: LabelValue(
                _value(spec, categories[c].full_key, rng),
                rng.choice(["verified", "gold", "auto_accepted", "predicted"]),
                rng.random() < 0.5,
                rng.choice([None, "stats:bench@1", "open_clip:ViT-B-32@2"]),
                rng.choice([None, 0.9, 0.1 + i / 7, 1.0, 0.0, float("nan"), float("inf"), 1e-9]),
            )
            for c in chosen
        }
        if i % 11 == 0 and labels:  # a value no memo can key: encoded each time, still right
            first = next(iter(labels))
            labels[first] = labels[first]._replace(value={"odd": [1, 2]})
        row = _subject_row(i + 1)._replace(
            # JSON columns as the database would hold them compactly; the reference re-encodes
            # them compactly (spaced text is the next test's).
            bbox=rng.choice([None, "[0,0,384,512]", "[1.5,2,3,4]"]),
            quality=rng.choice([None, "null", "{}", '{"sharpness":0.5,"brightness":0.25}']),
            shot_type=rng.choice([None, "full_body"]),
            detector_score=rng.choice([None, 0.93, 1.0, 0.1 + i / 7, 1e-9, -0.0, float("nan"), float("inf")]),
            analyzer_version=rng.choice([None, "a@1"]),
            source_id=rng.choice([None, 3]),
            licence=rng.choice(["", "cc-by", 'a "quoted" licence ü']),
            consent=rng.choice(["", "yes\nsigned"]),
        )
        records.append(record_of(row, labels=labels, caption=f"a caption {i} with ü"))
    return records


def test_the_attributes_encoder_writes_what_json_dumps_writes_of_the_document() -> None:
    spec = load_default()
    snapshot = {"id": 3, "label_event_high_water": 99, "taxonomy": "human-v1@1"}
    encoder = AttributesEncoder(spec, snapshot)
    records = _records(spec, 300)
    for _ in range(2):  # the second pass reads what the first remembered
        for record in records:
            expected = json.dumps(
                attributes_document(spec, record, snapshot), ensure_ascii=False, separators=(",", ":")
            )
            assert encoder.encode(record) == expected.encode()


def test_an_encoder_that_remembers_few_labels_forgets_them_and_still_writes_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = load_default()
    records = _records(spec, 40)
    remembering = AttributesEncoder(spec, {})
    expected = [remembering.encode(record) for record in records]
    monkeypatch.setattr(records_module, "_REMEMBERED_AT_MOST", 5)
    forgetting = AttributesEncoder(spec, {})
    assert [forgetting.encode(record) for record in records] == expected
    assert len(forgetting._labels) < len(remembering._labels)
    assert document_encoder(spec) is document_encoder(spec)  # one per taxonomy and process


def test_a_sample_writes_its_rows_json_columns_as_stored_and_they_read_back_as_decoded() -> None:
    spec = load_default()
    encoder = AttributesEncoder(spec, {"id": 1})
    row = _subject_row(1)._replace(bbox="[0, 0, 384, 512]", quality='{"sharpness": 0.5, "é": [1, 2]}')
    record = record_of(row, labels={}, caption="a person")
    encoded = encoder.encode(record)
    assert (
        b'"bbox":[0, 0, 384, 512]' in encoded
        and b'"quality":{"sharpness": 0.5, "\xc3\xa9": [1, 2]}' in encoded
    )
    assert json.loads(encoded) == attributes_document(spec, record, {"id": 1})
    assert record.image["quality"] == {"sharpness": 0.5, "é": [1, 2]}
    assert record.subject["bbox"] == [0, 0, 384, 512]
    for stored in (None, "null"):  # an image without metrics has an empty object, as before
        empty = record_of(row._replace(quality=stored, bbox=None), labels={}, caption="")
        assert json.loads(encoder.encode(empty))["image"]["quality"] == {} == empty.image["quality"]
        assert json.loads(encoder.encode(empty))["subject"]["bbox"] is None


def test_a_file_written_in_chunks_is_the_file_its_joined_bytes_make(tmp_path: Path) -> None:
    rng = random.Random(5)
    sizes = [0, 1, 512, BATCH_BYTES - 1, BATCH_BYTES, 3, BATCH_BYTES * 2 + 7, 10, 10]
    chunks = [rng.randbytes(size) for size in sizes]
    data = b"".join(chunks)
    destination = Destination(str(tmp_path))
    written = destination.write("chunked.tar", iter(chunks))
    assert written == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert (tmp_path / "chunked.tar").read_bytes() == data
    assert destination.write("whole.tar", data) == written
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("parts", [[], [[]], [[], [{"id": 1}], []], "tasks"])
def test_label_studio_tasks_merged_part_by_part_are_what_json_dumps_writes_of_them_all(
    parts: list[list[Any]] | str,
) -> None:
    if parts == "tasks":
        task = {
            "id": 7,
            "data": {"image": "images/0000000007.jpg", "note": "a line\nand «another»"},
            "predictions": [{"result": [{"value": {"choices": ["red", "blue"]}}], "score": 0.5}],
            "annotations": [{"result": []}],
            "meta": {},
        }
        parts = [[task, {**task, "id": 8}], [], [{**task, "id": 9}]]
    assert isinstance(parts, list)
    everything = [item for items in parts for item in items]
    expected = json.dumps(everything, ensure_ascii=False, indent=1).encode()
    assert b"".join(indented_list(iter(parts))) == expected


def _subject_row(subject_id: int) -> SubjectRow:
    columns: dict[str, Any] = dict.fromkeys(SubjectRow._fields)
    columns.update(
        position=subject_id - 1,
        subject_id=subject_id,
        subject_index=0,
        image_id=subject_id,
        sha256="ab" * 32,
        width=4,
        height=4,
        mime="image/png",
        licence="",
        consent="",
        storage_key=f"images/{subject_id}.png",
    )
    return SubjectRow(**columns)


def test_records_keep_the_snapshot_labels_they_were_asked_for_each_with_its_own_lists() -> None:
    spec = load_default()
    categories = spec.categories()
    multi = next(c for c in categories if c.kind == "multi")
    closed = next(c for c in categories if c.kind == "single" and c.when is None and not c.sensitive)
    sensitive = next((c for c in categories if c.sensitive), None)
    ids = {c.full_key: n for n, c in enumerate(categories, 1)}
    listed = json.dumps([v.key for v in multi.values[:2]])
    value = json.dumps(closed.values[0].key)
    labels: list[tuple[Any, ...]] = []
    for subject_id in (1, 2):
        state = "predicted" if subject_id == 2 else "gold"
        labels.append((subject_id, ids[multi.full_key], listed, "verified", 7, 3, 0.5 + subject_id))
        labels.append((subject_id, ids[closed.full_key], value, state, None, 3, 0.25))
        if sensitive is not None:
            labels.append((subject_id, ids[sensitive.full_key], json.dumps(None), "verified", 7, None, None))
    rows = [_subject_row(n) for n in (1, 2)]
    records = build_records(
        spec,
        rows,
        labels,
        {i: k for k, i in ids.items()},
        {3: "stats:bench@1"},
        states=("verified", "gold"),
        include_sensitive=False,
    )
    first, second = (r.labels for r in records)
    assert list(first) == sorted([multi.full_key, closed.full_key], key=list(ids).index)
    assert first[multi.full_key] == LabelValue(json.loads(listed), "verified", True, "stats:bench@1", 1.5)
    assert first[closed.full_key] == LabelValue(closed.values[0].key, "gold", False, "stats:bench@1", 0.25)
    assert list(second) == [multi.full_key]  # predicted: not asked for
    assert second[multi.full_key].confidence == 2.5
    assert first[multi.full_key].value is not second[multi.full_key].value
