"""CosmicMan parquet, JSONL and Label Studio out."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from PIL import Image
from sqlalchemy import update

from server.core import runtime
from server.exports.labelstudio import labeling_config
from server.exports.schemas import ExportOptions
from server.orm import Subject
from server.taxonomy.format import load_default
from tests.server.exports.conftest import REVIEWED, run_export, sqlite_only


@sqlite_only
def test_cosmicman_parquet_has_its_columns_in_group_order_with_images_beside(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    spec = load_default()
    out = tmp_path / "cm"
    export = run_export(reviewed["project"]["id"], "cosmicman", out, options=ExportOptions(shard_size=2))
    assert export.status == "done", export.error
    assert pq.ParquetFile(out / "cosmicman.parquet").metadata.num_row_groups == 2  # a part each
    table = pq.read_table(out / "cosmicman.parquet")
    assert table.column_names == ["path", "height", "width", "aa_text", "aa_ids", "person_type", "caption"]
    groups = [g for g in spec.caption_groups if g.key != "shot"]
    assert len(groups) == 20
    rows = table.to_pylist()
    assert len(rows) == REVIEWED
    for row in rows:
        with Image.open(out / row["path"]) as image:
            assert image.size == (row["width"], row["height"]) == (384, 512)
        aa_text = json.loads(row["aa_text"])
        assert len(aa_text) == 20 and json.loads(row["aa_ids"]) == [list(g.parsing_ids) for g in groups]
        for group, attributes in zip(groups, aa_text, strict=True):
            for attribute in attributes or {}:
                owners = {c.caption.group for c in spec.categories() if c.key == attribute}
                assert group.key in owners, (group.key, attribute)
        assert aa_text[0] and "age" in aa_text[0]  # identity first
        assert row["person_type"] in {"full_body", "nearly_full_body", "upper_body", "portrait", "headshot"}


@sqlite_only
def test_cosmicman_parquet_names_parsing_masks_when_they_exist(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    Image.new("L", (384, 512), 4).save(buffer, format="PNG")
    runtime.storage().put("masks/test.png", buffer.getvalue())
    with runtime.database().session_scope() as session:
        session.execute(
            update(Subject)
            .where(Subject.id == reviewed["reviewed"][0])
            .values(parsing_mask_key="masks/test.png")
        )
    out = tmp_path / "cm"
    # The second part has no mask: the merged file still names the first part's.
    run_export(reviewed["project"]["id"], "cosmicman", out, options=ExportOptions(shard_size=2))
    rows = pq.read_table(out / "cosmicman.parquet").to_pylist()
    assert len(rows) == REVIEWED
    with_mask = [r for r in rows if r["segm_path"]]
    assert len(with_mask) == 1 and (out / with_mask[0]["segm_path"]).read_bytes() == buffer.getvalue()


@sqlite_only
def test_jsonl_has_one_record_per_subject(reviewed: dict[str, Any], tmp_path: Path) -> None:
    run_export(reviewed["project"]["id"], "jsonl", tmp_path / "j")
    lines = [json.loads(line) for line in (tmp_path / "j" / "labels.jsonl").read_text().splitlines()]
    assert [doc["subject_id"] for doc in lines] == reviewed["reviewed"]
    assert all(doc["caption"] and doc["regions"]["shot"]["type"] for doc in lines)


@sqlite_only
def test_label_studio_tasks_carry_predictions_and_the_people_s_answers(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "ls"
    export = run_export(reviewed["project"]["id"], "labelstudio", out)
    assert export.status == "done", export.error
    tasks = json.loads((out / "tasks.json").read_text())
    config = ET.fromstring((out / "labeling_config.xml").read_text())
    blocks = {el.get("name"): el for el in config if el.tag in {"Choices", "TextArea"}}
    spec = load_default()
    assert set(blocks) == {c.full_key for c in spec.categories() if not c.sensitive}
    assert config.find("Image").get("value") == "$image"  # type: ignore[union-attr]
    assert [t["id"] for t in tasks] == reviewed["reviewed"]
    for task in tasks:
        assert (out / task["data"]["image"]).is_file()
        assert task["predictions"] and task["predictions"][0]["model_version"].startswith("stats:")
        assert 0 <= task["predictions"][0]["score"] <= 1
        [annotation] = task["annotations"]
        for result in task["predictions"][0]["result"] + annotation["result"]:
            block = blocks[result["from_name"]]
            assert result["to_name"] == "image"
            if result["type"] == "choices":
                allowed = {c.get("value") for c in block}
                assert set(result["value"]["choices"]) <= allowed
            else:
                assert result["type"] == "textarea"
        answered = {r["from_name"] for r in annotation["result"]}
        assert "top.color" in answered and "identity.gender" not in answered


def test_label_studio_config_leaves_sensitive_categories_out_unless_opted_in() -> None:
    spec = load_default()
    sensitive = [c.full_key for c in spec.categories() if c.sensitive]
    assert sensitive
    assert all(f'"{key}"' not in labeling_config(spec) for key in sensitive)
    assert all(f'"{key}"' in labeling_config(spec, include_sensitive=True) for key in sensitive)
