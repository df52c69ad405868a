from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from workers import contracts
from workers.contracts import (
    CategorySpec,
    EmbedItem,
    EmbedResult,
    ModelSpec,
    PrelabelBatch,
    PrelabelImage,
    ValueCondition,
)

REPO = Path(__file__).resolve().parents[2]
SHA = "0" * 64


def test_task_and_queue_names_are_the_agreed_strings() -> None:
    assert (contracts.CPU_QUEUE, contracts.GPU_QUEUE) == ("cpu", "gpu")
    assert (contracts.ANALYZE, contracts.EMBED, contracts.PRELABEL) == (
        "gpu.analyze",
        "gpu.embed",
        "gpu.prelabel",
    )
    assert contracts.PERSIST_PREDICTIONS == "cpu.persist_predictions"
    assert len(contracts.ATR_LABELS) == 18


def test_prelabel_batch_survives_a_json_round_trip(categories: list[CategorySpec]) -> None:
    batch = PrelabelBatch(
        batch_id=1,
        project_id=2,
        model_version_id=3,
        model=ModelSpec(
            family="open_clip", source="/m", name="clip", version="v1", options={"temperature": 0.5}
        ),
        categories=categories,
        images=[PrelabelImage(image_id=7, uri="file:///x.jpg", sha256=SHA)],
    )
    wire = json.dumps(batch.model_dump(mode="json"))
    assert PrelabelBatch.model_validate(json.loads(wire)) == batch
    # Conditions travel as the taxonomy's plain dicts, with the key spelled "in".
    condition = {"category": "top.type", "in": ["coat", "jacket"]}
    spec = CategorySpec.model_validate(
        {"key": "coat.color", "kind": "text", "question": "q", "when": condition}
    )
    assert spec.model_dump(mode="json")["when"] == condition


def test_conditions_combine_and_report_unknown_categories() -> None:
    spec = CategorySpec.model_validate(
        {
            "key": "coat.color",
            "kind": "text",
            "question": "q",
            "when": {
                "all": [
                    {"category": "coat.worn", "equals": True},
                    {
                        "any": [
                            {"category": "top.type", "not_in": ["dress"]},
                            {"category": "season", "equals": "winter"},
                        ]
                    },
                ]
            },
        }
    )
    assert spec.when is not None
    assert spec.when.evaluate({"coat.worn": True, "top.type": "shirt"}) is True
    assert spec.when.evaluate({"coat.worn": False, "top.type": "shirt"}) is False
    assert spec.when.evaluate({"coat.worn": True}) is None
    assert spec.when.evaluate({"coat.worn": True, "top.type": None, "season": "winter"}) is True
    assert ValueCondition.model_validate({"category": "p", "in": ["a"]}).evaluate({"p": ["b", "a"]}) is True


@pytest.mark.parametrize(
    "condition", [{"category": "a"}, {"category": "a", "equals": "x", "in": ["x"]}, {"all": []}]
)
def test_malformed_conditions_are_rejected(condition: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CategorySpec.model_validate({"key": "a.b", "kind": "text", "question": "q", "when": condition})


@pytest.mark.parametrize(
    ("kind", "values"),
    [("single", [{"key": "a"}]), ("boolean", [{"key": "true"}, {"key": "false"}]), ("text", [{"key": "a"}])],
)
def test_values_must_fit_the_kind(kind: str, values: list[dict[str, str]]) -> None:
    with pytest.raises(ValidationError):
        CategorySpec.model_validate({"key": "a.b", "kind": kind, "question": "q", "values": values})


def test_boolean_answers_follow_value_key_order() -> None:
    spec = CategorySpec.model_validate(
        {
            "key": "a.b",
            "kind": "boolean",
            "question": "q",
            "values": [{"key": "no"}, {"key": "yes", "label": "sure"}],
        }
    )
    assert spec.answers() == {"no": "no", "yes": "sure"}
    assert CategorySpec(key="a.c", kind="boolean", question="q").answers() == {"yes": "yes", "no": "no"}


def test_embed_result_checks_vector_length_against_dim() -> None:
    vector = base64.b64encode(struct.pack("<3f", 1.0, 0.0, 0.0)).decode()
    result = EmbedResult(
        batch_id=1,
        project_id=1,
        backbone_version="b",
        dim=3,
        items=[EmbedItem(image_id=1, vector_b64=vector)],
    )
    assert struct.unpack("<3f", result.items[0].vector_bytes()) == (1.0, 0.0, 0.0)
    with pytest.raises(ValidationError):
        EmbedResult(
            batch_id=1,
            project_id=1,
            backbone_version="b",
            dim=4,
            items=[EmbedItem(image_id=1, vector_b64=vector)],
        )


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True
    )
    return set(json.loads(output.stdout.strip().splitlines()[-1]))


def test_contracts_import_without_torch_or_numpy() -> None:
    loaded = _modules_after_import("import workers.contracts")
    assert not {"torch", "numpy", "transformers", "open_clip"} & loaded


def test_inference_never_imports_the_server_or_its_stack() -> None:
    loaded = _modules_after_import(
        "import workers.contracts, workers.inference, workers.inference.pipeline, workers.inference.registry,"
        " workers.inference.benchmark, workers.inference.pipeline_heads,"
        " workers.inference.labelers.open_clip, workers.inference.labelers.vqa,"
        " workers.inference.labelers.captioner, workers.inference.labelers.heads,"
        " workers.inference.labelers.stats, workers.inference.analyzers.detector,"
        " workers.inference.analyzers.parsing, workers.inference.analyzers.quality,"
        " workers.inference.analyzers.masks, workers.inference.analyzers.person"
    )
    forbidden = {m for m in loaded if m.split(".")[0] in {"server", "sqlalchemy", "fastapi", "starlette"}}
    assert not forbidden


def test_the_weight_free_demo_path_never_imports_transformers_or_open_clip() -> None:
    loaded = _modules_after_import(
        "import workers.inference.pipeline, workers.inference.pipeline_heads,"
        " workers.inference.labelers.stats, workers.inference.labelers.heads"
    )
    assert not {"transformers", "open_clip"} & loaded
