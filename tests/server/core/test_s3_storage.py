"""Object storage on an S3-compatible server (moto, a real server process on localhost)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import s3fs
from PIL import Image

from server.core import runtime
from server.core.storage import S3Storage
from tests.server.conftest import Api


def test_objects_round_trip_under_the_prefix(s3_server: str, s3_bucket: str) -> None:
    storage = S3Storage(s3_bucket, "blobs/", s3_server)
    storage.put("images/ab/abc.jpg", b"bytes")
    assert storage.get("images/ab/abc.jpg") == b"bytes"
    assert storage.exists("images/ab/abc.jpg") and not storage.exists("images/ab/other.jpg")
    assert storage.uri("images/ab/abc.jpg") == f"s3://{s3_bucket}/blobs/images/ab/abc.jpg"
    storage.delete("images/ab/abc.jpg")
    storage.delete("images/ab/abc.jpg")  # deleting what is gone is fine
    assert not storage.exists("images/ab/abc.jpg")
    with pytest.raises(FileNotFoundError):
        storage.get("images/ab/abc.jpg")
    with pytest.raises(ValueError):
        storage.put("../escape", b"x")


def test_ingest_stores_in_the_bucket_and_workers_read_it_by_uri(
    s3_server: str, s3_bucket: str, env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "AA_STORAGE__BACKEND": "s3",
        "AA_STORAGE__BUCKET": s3_bucket,
        "AA_STORAGE__PREFIX": "blobs",
        "AA_STORAGE__ENDPOINT_URL": s3_server,
    }.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    from fastapi.testclient import TestClient

    from server.main import create_app
    from tests.server.conftest import make_user

    with TestClient(create_app()) as client:
        make_user("s3-admin@example.com", is_admin=True)
        admin = Api(client, "s3-admin@example.com")
        project = admin.post("/projects", json={"name": "On S3"}).json()
        originals = []
        files = []
        for n, color in enumerate(["red", "green"]):
            buffer = io.BytesIO()
            Image.new("RGB", (320, 400), color).save(buffer, format="JPEG")
            originals.append(buffer.getvalue())
            files.append(("files", (f"p{n}.jpg", buffer.getvalue(), "image/jpeg")))
        assert admin.post(f"/projects/{project['id']}/uploads", files=files).status_code == 202
        # The pipeline ran (inline): its workers read every image from s3:// URIs.
        stats = admin.get(f"/projects/{project['id']}/images/stats").json()
        assert stats["stages"] == {"prelabeled": 2}
        images = admin.get(f"/projects/{project['id']}/images").json()
        served = {admin.get(f"/images/{i['id']}/file").content for i in images}
        assert served == set(originals)
        assert all(admin.get(f"/images/{i['id']}/thumbnail").status_code == 200 for i in images)
    bucket = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    stored = bucket.find(f"{s3_bucket}/blobs/images")
    assert len(stored) == 2
    assert not (env["data_dir"] / "blobs" / "images").exists()
