"""S3-prefix sources against a real S3-compatible server (moto): listed and read outside any
transaction, confined to the prefixes the deployment allows, watched like folders."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image

from server.core import runtime
from server.core.time import utcnow
from server.sources import watch
from tests.server.conftest import Api


def _jpeg(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 500), color).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def bucket(env: dict[str, Any], s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test bucket, with `people/` allowed to sources; returns a writer of its objects."""
    import s3fs

    monkeypatch.setenv("AA_STORAGE__ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AA_SOURCE_S3_PREFIXES", f'["s3://{s3_bucket}/people"]')
    runtime.reset()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)

    class Bucket:
        name = s3_bucket

        def put(self, key: str, data: bytes) -> None:
            fs.pipe_file(f"{s3_bucket}/{key}", data)

    return Bucket()


def _create(admin: Api, project_id: int, url: str, **extra: Any) -> Any:
    return admin.post(f"/projects/{project_id}/sources/s3", json={"name": "bucket", "url": url, **extra})


def _run(admin: Api, project_id: int, source_id: int) -> dict[str, Any]:
    run = admin.post(f"/projects/{project_id}/sources/{source_id}/runs")
    assert run.status_code == 202, run.text
    return dict(admin.get(f"/projects/{project_id}/ingest-runs/{run.json()['id']}").json())


def test_the_images_under_an_s3_prefix_are_ingested_and_a_second_run_adds_nothing(
    bucket: Any, admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    bucket.put("people/2024/a.jpg", _jpeg("red"))
    bucket.put("people/b.JPEG", _jpeg("green"))
    bucket.put("people/notes.txt", b"not an image, not listed")
    bucket.put("people/broken.png", b"not a picture")
    bucket.put("elsewhere/c.jpg", _jpeg("blue"))
    source = _create(admin, pid, f"s3://{bucket.name}/people")
    assert source.status_code == 201, source.text
    assert source.json()["kind"] == "s3" and source.json()["config"]["prefix"] == "people/"
    first = _run(admin, pid, source.json()["id"])
    assert (first["status"], first["items_total"], first["added"], first["rejected"]) == (
        "succeeded",
        3,
        2,
        1,
    )
    rejections = {r["name"]: r["reason"] for r in admin.get(f"/projects/{pid}/rejections").json()}
    assert rejections == {"broken.png": "not_an_image"}
    second = _run(admin, pid, source.json()["id"])
    assert (second["added"], second["duplicates"]) == (0, 2)
    stats = admin.get(f"/projects/{pid}/images/stats").json()
    assert sum(stats["stages"].values()) == 2


def test_a_prefix_outside_the_allowed_ones_is_refused(
    bucket: Any, admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    for url in (
        f"s3://{bucket.name}/elsewhere",
        f"s3://{bucket.name}/peoplex",
        f"s3://{bucket.name}",
        "s3://another-bucket/people",
    ):
        response = _create(admin, pid, url)
        assert (response.status_code, response.json()["error"]) == (400, "s3_prefix_refused"), url
    for url in (f"https://{bucket.name}/people", f"s3://{bucket.name}/people/../elsewhere"):
        response = _create(admin, pid, url)
        assert (response.status_code, response.json()["error"]) == (400, "s3_url"), url
    assert admin.get(f"/projects/{pid}/sources").json() == []


def test_a_watched_prefix_ingests_only_new_objects(bucket: Any, admin: Api, project: dict[str, Any]) -> None:
    pid = project["id"]
    bucket.put("people/a.jpg", _jpeg("red"))
    source = _create(admin, pid, f"s3://{bucket.name}/people/", watch_every_seconds=300)
    assert source.status_code == 201 and source.json()["watch_every_seconds"] == 300
    with runtime.database().session_scope() as session:
        (first,) = watch.start_due_runs(session)
    assert admin.get(f"/projects/{pid}/ingest-runs/{first}").json()["added"] == 1
    bucket.put("people/b.jpg", _jpeg("green"))
    with runtime.database().session_scope() as session:
        (second,) = watch.start_due_runs(session, utcnow() + timedelta(seconds=301))
    run = admin.get(f"/projects/{pid}/ingest-runs/{second}").json()
    assert (run["trigger"], run["items_total"], run["added"], run["duplicates"]) == ("watch", 1, 1, 0)


def test_a_prefix_that_cannot_be_listed_fails_its_run_with_the_reason(
    bucket: Any, admin: Api, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"{bucket.name}-missing"
    monkeypatch.setenv("AA_SOURCE_S3_PREFIXES", f'["s3://{missing}/people"]')
    runtime.reset()
    source = _create(admin, project["id"], f"s3://{missing}/people")
    assert source.status_code == 201, source.text
    run = _run(admin, project["id"], source.json()["id"])
    assert run["status"] == "failed" and "could not be listed" in run["error"], run
