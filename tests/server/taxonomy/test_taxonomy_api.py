"""Taxonomy versions through the API: the shipped default, uploads, idempotence, errors, history."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from server.core import runtime
from server.orm import Category, CategoryValue, Region, TaxonomyVersion
from server.taxonomy.format import load_default
from tests.server.conftest import Api

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

TINY = """\
name: tiny
caption_groups:
  - {key: hair, noun: hair}
regions:
  - key: hair
    name: Hair
    parsing_ids: [2]
    categories:
      - key: color
        question: What color is the hair?
        kind: single
        caption: {group: hair, role: attribute}
        values:
          - {key: black, prompts: ["a person with black hair"]}
          - {key: blond, prompts: ["a person with blond hair"]}
      - key: dyed
        question: Is the hair dyed?
        kind: boolean
        when: {category: hair.color, equals: blond}
"""

# The same content as TINY: other layout, a comment, defaults spelled out.
TINY_RELAID = """\
# a comment changes nothing
name: tiny
caption_groups: [{key: hair, noun: hair}]
regions:
  - key: hair
    name: Hair
    parsing_ids: [2]
    categories:
      - {key: color, question: 'What color is the hair?', kind: single, trust_threshold: 0.85,
         caption: {group: hair, role: attribute},
         values: [{key: black, prompts: [a person with black hair]},
                  {key: blond, label: blond, prompts: [a person with blond hair]}]}
      - {key: dyed, question: "Is the hair dyed?", kind: boolean, when: {category: hair.color, equals: blond}}
"""

TINY_CHANGED = TINY.replace(
    '          - {key: blond, prompts: ["a person with blond hair"]}\n',
    '          - {key: blond, prompts: ["a person with blond hair"]}\n'
    '          - {key: red, prompts: ["a person with red hair"]}\n',
)


def _upload(api: Api, project_id: int, text: str) -> Any:
    return api.post(f"/projects/{project_id}/taxonomy", json={"yaml": text})


def _versions(api: Api, project_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/projects/{project_id}/taxonomy/versions")
    assert response.status_code == 200, response.text
    return list(response.json())


def _stored_rows() -> tuple[int, int, int, int]:
    with runtime.database().session_scope() as session:
        counts = (
            session.scalar(select(func.count()).select_from(model))
            for model in (TaxonomyVersion, Region, Category, CategoryValue)
        )
        return tuple(int(n or 0) for n in counts)  # type: ignore[return-value]


def test_a_new_project_gets_human_v1_as_version_1_as_a_full_tree(admin: Api, project: dict[str, Any]) -> None:
    response = admin.get(f"/projects/{project['id']}/taxonomy")
    assert response.status_code == 200, response.text
    tree = response.json()
    assert (tree["name"], tree["version"], tree["current"]) == ("human-v1", 1, True)
    assert tree["id"] == project["taxonomy_version_id"]

    spec = load_default("human-v1")
    assert [g["key"] for g in tree["caption_groups"]] == [g.key for g in spec.caption_groups]
    assert [r["key"] for r in tree["regions"]] == [r.key for r in spec.regions]
    for region_out, region in zip(tree["regions"], spec.regions, strict=True):
        assert (region_out["name"], region_out["parsing_ids"]) == (region.name, list(region.parsing_ids))
        assert [c["key"] for c in region_out["categories"]] == [c.full_key for c in region.categories]
        for category_out, category in zip(region_out["categories"], region.categories, strict=True):
            assert category_out["kind"] == category.kind
            assert category_out["question"] == category.question
            assert category_out["trust_threshold"] == category.trust_threshold
            assert category_out["sensitive"] == category.sensitive
            when = category.when
            assert category_out["when"] == (when.model_dump(mode="json", exclude_none=True) if when else None)
            assert [(v["key"], v["label"], v["prompts"]) for v in category_out["values"]] == [
                (v.key, v.label, list(v.prompts)) for v in category.values
            ]
    assert any(c["key"] == "top.sleeve_length" for r in tree["regions"] for c in r["categories"])
    assert _versions(admin, project["id"]) == [
        {k: tree[k] for k in ("id", "name", "version", "content_hash", "created_at", "current")}
    ]


def test_an_annotator_can_read_the_taxonomy(member_factory: Any, project: dict[str, Any]) -> None:
    annotator = member_factory(project["id"], "annotator", "ann@example.com")
    assert annotator.get(f"/projects/{project['id']}/taxonomy").json()["name"] == "human-v1"


def test_uploading_a_changed_taxonomy_creates_the_next_version_and_makes_it_current(
    admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    created = _upload(admin, pid, TINY)
    assert created.status_code == 201, created.text
    v2 = created.json()
    assert (v2["name"], v2["version"], v2["current"]) == ("tiny", 2, True)
    assert [c["key"] for c in v2["regions"][0]["categories"]] == ["hair.color", "hair.dyed"]
    assert [v["key"] for v in v2["regions"][0]["categories"][1]["values"]] == ["true", "false"]
    assert v2["regions"][0]["categories"][1]["when"] == {"category": "hair.color", "equals": "blond"}

    current = admin.get(f"/projects/{pid}/taxonomy").json()
    assert (current["id"], current["version"]) == (v2["id"], 2)
    assert admin.get(f"/projects/{pid}").json()["taxonomy_version_id"] == v2["id"]
    assert [(v["version"], v["current"]) for v in _versions(admin, pid)] == [(1, False), (2, True)]

    v3 = _upload(admin, pid, TINY_CHANGED)
    assert v3.status_code == 201, v3.text
    assert v3.json()["version"] == 3
    assert [v["key"] for v in v3.json()["regions"][0]["categories"][0]["values"]] == ["black", "blond", "red"]


def test_uploading_the_same_content_again_returns_the_stored_version_with_200(
    admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    first = _upload(admin, pid, TINY)
    assert first.status_code == 201
    rows = _stored_rows()
    for text in (TINY, TINY_RELAID):
        again = _upload(admin, pid, text)
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["version"]) == (first.json()["id"], 2)
        assert again.json()["content_hash"] == first.json()["content_hash"]
    assert _stored_rows() == rows
    assert [v["version"] for v in _versions(admin, pid)] == [1, 2]


def test_uploading_an_older_versions_content_makes_it_current_again_without_a_new_version(
    admin: Api, project: dict[str, Any]
) -> None:
    from server.taxonomy.service import default_yaml

    pid = project["id"]
    _upload(admin, pid, TINY)
    back = _upload(admin, pid, default_yaml("human-v1"))
    assert back.status_code == 200
    assert (back.json()["version"], back.json()["current"]) == (1, True)
    assert [(v["version"], v["current"]) for v in _versions(admin, pid)] == [(1, True), (2, False)]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (TINY.replace("kind: single", "kind: bogus"), "regions[0].categories[0].kind"),
        (TINY.replace("key: color", "key: Color"), "regions[0].categories[0].key"),
        (
            TINY.replace(
                '          - {key: black, prompts: ["a person with black hair"]}\n',
                "          - {key: black}\n",
            ),
            "regions[0].categories[0].values[0].prompts",
        ),
        (TINY.replace("equals: blond", "equals: green"), "regions[0].categories[1].when.equals"),
        (TINY.replace("parsing_ids: [2]", "parsing_ids: [99]"), "regions[0].parsing_ids[0]"),
        (TINY.replace("name: tiny\n", ""), "name"),
        ("regions: [unclosed", ""),
    ],
    ids=["bad-kind", "bad-key", "no-prompts", "unknown-value", "parsing-id", "no-name", "not-yaml"],
)
def test_an_invalid_taxonomy_is_422_with_the_path_of_the_bad_field_and_stores_nothing(
    admin: Api, project: dict[str, Any], text: str, path: str
) -> None:
    pid = project["id"]
    rows = _stored_rows()
    response = _upload(admin, pid, text)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_failed"
    assert path in [e["path"] for e in body["errors"]], body["errors"]
    assert all(e["message"] for e in body["errors"])
    assert _stored_rows() == rows
    assert admin.get(f"/projects/{pid}/taxonomy").json()["version"] == 1


def test_every_problem_is_reported_at_once(admin: Api, project: dict[str, Any]) -> None:
    text = TINY.replace("kind: single", "kind: bogus").replace("parsing_ids: [2]", "parsing_ids: [99]")
    paths = {e["path"] for e in _upload(admin, project["id"], text).json()["errors"]}
    assert {"regions[0].categories[0].kind", "regions[0].parsing_ids[0]"} <= paths


def test_an_empty_upload_is_refused_by_the_request_schema(admin: Api, project: dict[str, Any]) -> None:
    response = admin.post(f"/projects/{project['id']}/taxonomy", json={"yaml": ""})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "body.yaml"


def test_old_versions_stay_readable_unchanged(admin: Api, project: dict[str, Any]) -> None:
    pid = project["id"]
    v1 = admin.get(f"/projects/{pid}/taxonomy").json()
    _upload(admin, pid, TINY)
    _upload(admin, pid, TINY_CHANGED)
    old = admin.get(f"/projects/{pid}/taxonomy/versions/{v1['id']}")
    assert old.status_code == 200
    assert old.json() == {**v1, "current": False}
    v2_id = _versions(admin, pid)[1]["id"]
    v2 = admin.get(f"/projects/{pid}/taxonomy/versions/{v2_id}").json()
    assert [v["key"] for v in v2["regions"][0]["categories"][0]["values"]] == ["black", "blond"]


def test_a_version_of_another_project_is_404(admin: Api, project: dict[str, Any]) -> None:
    other = admin.post("/projects", json={"name": "Other"}).json()
    response = admin.get(f"/projects/{project['id']}/taxonomy/versions/{other['taxonomy_version_id']}")
    assert response.status_code == 404


def test_a_project_with_an_unknown_shipped_taxonomy_is_refused_and_not_created(admin: Api) -> None:
    response = admin.post("/projects", json={"name": "Odd", "taxonomy": "no-such-taxonomy"})
    assert response.status_code == 400
    assert response.json()["error"] == "unknown_taxonomy"
    assert admin.get("/projects").json() == []
    assert _stored_rows() == (0, 0, 0, 0)
