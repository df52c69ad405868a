"""The S3 destination, against a real S3-compatible server process on localhost (moto)."""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from server.exports.schemas import ExportOptions
from tests.server.exports.conftest import REVIEWED, run_export, sqlite_only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _new_bucket(endpoint: str) -> tuple[Any, str]:
    """A client of the server and a bucket of this test's own (moto keeps buckets per process)."""
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    return fs, bucket


def _export_to_s3(project_id: int, fmt: str, url: str, endpoint: str) -> Any:
    return run_export(project_id, fmt, url, options=ExportOptions(shard_size=2), endpoint_url=endpoint)


@sqlite_only
def test_an_export_to_s3_lands_complete_with_checksums_and_no_temporaries(
    reviewed: dict[str, Any], s3_endpoint: str
) -> None:
    fs, bucket = _new_bucket(s3_endpoint)
    export = _export_to_s3(reviewed["project"]["id"], "webdataset", f"s3://{bucket}/people/v1", s3_endpoint)
    assert export.status == "done", export.error
    fs.invalidate_cache()
    names = sorted(p.removeprefix(f"{bucket}/people/v1/") for p in fs.find(f"{bucket}/people/v1"))
    assert names == ["00000.parquet", "00000.tar", "00001.parquet", "00001.tar", "manifest.json"]
    manifest = json.loads(fs.cat_file(f"{bucket}/people/v1/manifest.json"))
    assert manifest["counts"]["samples"] == REVIEWED
    for name, meta in manifest["files"].items():
        assert hashlib.sha256(fs.cat_file(f"{bucket}/people/v1/{name}")).hexdigest() == meta["sha256"]
    assert "endpoint_url" not in manifest["options"]


def test_a_streamed_s3_write_that_fails_part_way_leaves_no_object(s3_endpoint: str) -> None:
    """A shard streams to S3 in parts (over s3fs's 5 MB block); when its chunks stop with an
    error part-way, neither the temporary object nor the final one is left."""
    from server.exports.destinations import Destination

    fs, bucket = _new_bucket(s3_endpoint)
    destination = Destination(f"s3://{bucket}/shards", endpoint_url=s3_endpoint)
    chunk = bytes(range(256)) * 4096  # 1 MB

    def chunks(fail_after: int | None) -> Iterator[bytes]:
        for n in range(12):
            if n == fail_after:
                raise OSError("image unreadable")
            yield chunk

    written = destination.write("whole.tar", chunks(None))
    assert written == {"sha256": hashlib.sha256(chunk * 12).hexdigest(), "bytes": 12 * len(chunk)}
    with pytest.raises(OSError, match="image unreadable"):
        destination.write("broken.tar", chunks(fail_after=9))
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(f"{bucket}/shards")) == ["whole.tar"]
    assert hashlib.sha256(fs.cat_file(f"{bucket}/shards/whole.tar")).hexdigest() == written["sha256"]


@sqlite_only
def test_a_cosmicman_export_to_s3_merges_its_parts_into_one_parquet(
    reviewed: dict[str, Any], s3_endpoint: str
) -> None:
    import io

    import pyarrow.parquet as pq

    fs, bucket = _new_bucket(s3_endpoint)
    export = _export_to_s3(reviewed["project"]["id"], "cosmicman", f"s3://{bucket}/cm", s3_endpoint)
    assert export.status == "done", export.error
    fs.invalidate_cache()
    merged = fs.cat_file(f"{bucket}/cm/cosmicman.parquet")
    table = pq.read_table(io.BytesIO(merged))
    assert table.num_rows == REVIEWED and "segm_path" not in table.column_names  # no masks
    manifest = json.loads(fs.cat_file(f"{bucket}/cm/manifest.json"))
    assert manifest["files"]["cosmicman.parquet"]["sha256"] == hashlib.sha256(merged).hexdigest()
    assert not [p for p in fs.find(f"{bucket}/cm") if p.endswith(".tmp")]
