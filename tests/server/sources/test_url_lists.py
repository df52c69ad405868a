"""URL-list sources (CSV or parquet with a url column): fetched only through the egress client."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from server.core import runtime
from tests.server.conftest import Api


def _jpeg(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 500), color).save(buffer, format="JPEG")
    return buffer.getvalue()


PICTURES = {f"/p/{c}.jpg": _jpeg(c) for c in ("red", "green", "blue")}


class _Pictures(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        body = PICTURES.get(self.path)
        if self.path == "/text.jpg":
            body = b"not a picture"
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def pictures(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any]) -> Iterator[str]:
    """A picture server on 127.0.0.1, which this deployment's settings trust by name."""
    _Pictures.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("AA_EGRESS__ALLOW_NETWORKS", '["127.0.0.1/32"]')
    runtime.reset()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _create(admin: Api, project_id: int, filename: str, data: bytes, **form: str) -> Any:
    return admin.post(
        f"/projects/{project_id}/sources/url-list",
        files={"file": (filename, data, "text/csv")},
        data={"name": "web", **form},
    )


def _run(admin: Api, project_id: int, source_id: int) -> dict[str, Any]:
    run = admin.post(f"/projects/{project_id}/sources/{source_id}/runs")
    assert run.status_code == 202, run.text
    return dict(admin.get(f"/projects/{project_id}/ingest-runs/{run.json()['id']}").json())


def test_a_csv_url_list_is_ingested_and_a_second_run_adds_nothing(
    pictures: str, admin: Api, project: dict[str, Any]
) -> None:
    rows = "url,caption\n" + "".join(f"{pictures}{p},a person\n" for p in PICTURES)
    source = _create(admin, project["id"], "list.csv", rows.encode())
    assert source.status_code == 201, source.text
    assert source.json()["config"]["urls"] == 3 and source.json()["kind"] == "url_list"
    first = _run(admin, project["id"], source.json()["id"])
    assert (first["status"], first["added"], first["rejected"]) == ("succeeded", 3, 0)
    second = _run(admin, project["id"], source.json()["id"])
    assert (second["added"], second["duplicates"]) == (0, 3)


def test_a_parquet_list_with_another_column_name_works(
    pictures: str, admin: Api, project: dict[str, Any]
) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"image_url": [f"{pictures}/p/red.jpg"], "n": [1]}), buffer)
    source = _create(admin, project["id"], "list.parquet", buffer.getvalue(), column="image_url")
    assert source.status_code == 201, source.text
    assert _run(admin, project["id"], source.json()["id"])["added"] == 1


def test_forbidden_failing_and_bad_urls_are_rejected_with_reasons_while_good_ones_are_ingested(
    pictures: str, admin: Api, project: dict[str, Any]
) -> None:
    urls = [
        f"{pictures}/p/green.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/internal.jpg",
        "file:///etc/passwd",
        f"{pictures}/missing.jpg",
        f"{pictures}/text.jpg",
    ]
    source = _create(admin, project["id"], "list.csv", ("url\n" + "\n".join(urls) + "\n").encode())
    run = _run(admin, project["id"], source.json()["id"])
    assert (run["added"], run["rejected"]) == (1, 5)
    reasons = {r["name"]: r["reason"] for r in admin.get(f"/projects/{project['id']}/rejections").json()}
    assert reasons == {
        "http://169.254.169.254/latest/meta-data/": "url_link_local",
        "http://10.0.0.7/internal.jpg": "url_private",
        "file:///etc/passwd": "bad_url",
        f"{pictures}/missing.jpg": "url_http_status",
        f"{pictures}/text.jpg": "not_an_image",
    }
    assert sorted(_Pictures.hits) == ["/missing.jpg", "/p/green.jpg", "/text.jpg"]


@pytest.mark.parametrize(
    ("filename", "data", "code"),
    [
        ("list.csv", b"link\nhttp://example.com/a.jpg\n", "url_list_column"),
        ("list.csv", b"url\n\n", "url_list_empty"),
        ("list.csv", b"\xff\xfeu\x00r\x00l\x00", "url_list_encoding"),
        ("list.parquet", b"PAR1 broken PAR1", "url_list_format"),
    ],
)
def test_a_bad_list_is_refused_when_the_source_is_created(
    env: dict[str, Any], admin: Api, project: dict[str, Any], filename: str, data: bytes, code: str
) -> None:
    response = _create(admin, project["id"], filename, data)
    assert response.status_code == 400 and response.json()["error"] == code, response.text
    assert admin.get(f"/projects/{project['id']}/sources").json() == []


def test_annotators_cannot_add_url_lists(
    env: dict[str, Any], member_factory: Any, project: dict[str, Any]
) -> None:
    annotator = member_factory(project["id"], "annotator")
    assert _create(annotator, project["id"], "l.csv", b"url\nhttp://example.com/a.jpg\n").status_code == 403


def test_a_watched_list_at_a_url_is_fetched_again_and_only_new_urls_are_ingested(
    pictures: str, admin: Api, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from server.core.time import utcnow
    from server.sources import watch

    def beat(after_seconds: float) -> list[int]:
        with runtime.database().session_scope() as session:
            return watch.start_due_runs(session, utcnow() + timedelta(seconds=after_seconds))

    pid = project["id"]
    monkeypatch.setitem(
        PICTURES, "/list.csv", f"url\n{pictures}/p/red.jpg\n{pictures}/p/green.jpg\n".encode()
    )
    body = {"name": "feed", "list_url": f"{pictures}/list.csv", "watch_every_seconds": 60}
    source = admin.post(f"/projects/{pid}/sources/url-list-link", json=body)
    assert source.status_code == 201, source.text
    assert source.json()["watch_every_seconds"] == 60
    (first,) = beat(0)
    assert admin.get(f"/projects/{pid}/ingest-runs/{first}").json()["added"] == 2

    monkeypatch.setitem(PICTURES, "/list.csv", PICTURES["/list.csv"] + f"{pictures}/p/blue.jpg\n".encode())
    (second,) = beat(61)
    run = admin.get(f"/projects/{pid}/ingest-runs/{second}").json()
    assert (run["trigger"], run["items_total"], run["added"], run["duplicates"]) == ("watch", 1, 1, 0)
    # The list twice, each picture once: nothing seen before was fetched again.
    assert sorted(_Pictures.hits) == sorted(
        ["/list.csv", "/list.csv", "/p/red.jpg", "/p/green.jpg", "/p/blue.jpg"]
    )


def test_a_list_at_a_url_that_cannot_be_fetched_fails_its_run_with_the_reason(
    pictures: str, admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    for list_url, words in (
        ("http://169.254.169.254/latest/list.csv", "could not be fetched"),
        (f"{pictures}/missing.csv", "could not be fetched"),
        (f"{pictures}/p/red.jpg", "UTF-8"),
    ):
        source = admin.post(
            f"/projects/{pid}/sources/url-list-link", json={"name": "x", "list_url": list_url}
        )
        assert source.status_code == 201, source.text
        run = _run(admin, pid, source.json()["id"])
        assert run["status"] == "failed" and words in run["error"], (list_url, run)
    refused = admin.post(
        f"/projects/{pid}/sources/url-list-link", json={"name": "x", "list_url": "file:///etc/x"}
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_url")
