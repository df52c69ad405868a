"""Uploading files to a project: content decides, bad files become recorded rejections."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, Image

from server.core import runtime
from tests.server.conftest import Api

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def _picture(width: int = 320, height: int = 280, seed: int = 0) -> Image.Image:
    """Noise (so that a cut file loses scan data) with a red block in the top-left corner."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pixels[: height // 4, : width // 4] = (255, 0, 0)
    return Image.fromarray(pixels)


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) whose IHDR claims width x height but holds almost nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


GOOD = {
    "a.jpg": (_encode(_picture(seed=1), "JPEG", quality=80), "image/jpeg"),
    "b.png": (_encode(_picture(seed=2), "PNG"), "image/png"),
    "c.webp": (_encode(_picture(seed=3), "WEBP", quality=80), "image/webp"),
}
_cut = _encode(_picture(seed=4), "JPEG", quality=90)
BAD = {
    "notes.jpg": (b"this is a text file, not a picture\n" * 4, "not_an_image"),
    "bomb.png": (_png_claiming(50_000, 50_000), "too_many_pixels"),
    "cut.jpg": (_cut[: len(_cut) // 2], "truncated"),
}


def _files(named: dict[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    # The browser's claimed type is always image/jpeg here: the server must not believe it.
    return [("files", (name, data, "image/jpeg")) for name, data in named.items()]


def _upload(api: Api, project_id: int, named: dict[str, bytes]) -> dict[str, Any]:
    response = api.post(f"/projects/{project_id}/uploads", files=_files(named))
    assert response.status_code == 202, response.text
    run = api.get(f"/projects/{project_id}/ingest-runs/{response.json()['id']}")
    return dict(run.json())


def _images(api: Api, project_id: int) -> dict[str, dict[str, Any]]:
    return {i["original_name"]: i for i in api.get(f"/projects/{project_id}/images").json()}


def _staged_files(env: dict[str, Any]) -> list[str]:
    staging = env["data_dir"] / "blobs" / "staging"
    return [str(p) for p in staging.rglob("*") if p.is_file()] if staging.exists() else []


def test_good_files_become_images_and_bad_ones_rejections_with_reasons(
    env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    offered = {name: data for name, (data, _) in GOOD.items()} | {n: d for n, (d, _) in BAD.items()}
    run = _upload(admin, pid, offered)
    assert run["status"] == "succeeded"
    assert (run["items_total"], run["items_done"]) == (6, 6)
    assert (run["added"], run["duplicates"], run["rejected"]) == (3, 0, 3)

    images = _images(admin, pid)
    assert {name: i["mime"] for name, i in images.items()} == {n: mime for n, (_, mime) in GOOD.items()}
    assert "filtered" not in {i["stage"] for i in images.values()}
    assert {(i["width"], i["height"]) for i in images.values()} == {(320, 280)}
    rejections = admin.get(f"/projects/{pid}/rejections", params={"run_id": run["id"]}).json()
    assert {r["name"]: r["reason"] for r in rejections} == {n: reason for n, (_, reason) in BAD.items()}
    assert all(r["detail"] for r in rejections)
    # Staged bytes are removed once their batch is committed.
    assert _staged_files(env) == []


def test_uploading_the_same_good_files_again_adds_nothing(admin: Api, project: dict[str, Any]) -> None:
    pid = project["id"]
    good = {name: data for name, (data, _) in GOOD.items()}
    assert _upload(admin, pid, good)["added"] == 3
    again = _upload(admin, pid, {f"renamed-{name}": data for name, data in good.items()})
    assert (again["status"], again["added"], again["duplicates"], again["rejected"]) == ("succeeded", 0, 3, 0)
    assert len(_images(admin, pid)) == 3
    stats = admin.get(f"/projects/{pid}/images/stats").json()
    assert stats["total"] == 3


def test_the_same_bytes_twice_in_one_upload_are_stored_once(admin: Api, project: dict[str, Any]) -> None:
    data = GOOD["a.jpg"][0]
    run = _upload(admin, project["id"], {"one.jpg": data, "two.jpg": data})
    assert (run["added"], run["duplicates"]) == (1, 1)


@pytest.fixture
def small_upload_limit(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Uploads capped at 2,000 bytes, set before the app (and its settings) are made."""
    monkeypatch.setenv("AA_INGEST__MAX_UPLOAD_BYTES", "2000")
    runtime.reset()
    yield 2000


def test_a_file_over_the_upload_limit_is_413_and_nothing_is_staged(
    small_upload_limit: int, env: dict[str, Any], admin: Api, project: dict[str, Any]
) -> None:
    pid = project["id"]
    small = _encode(Image.new("RGB", (8, 8), "red"), "PNG")
    assert len(small) < small_upload_limit
    big = b"\xff\xd8\xff" + b"\x00" * small_upload_limit
    response = admin.post(f"/projects/{pid}/uploads", files=_files({"small.png": small, "big.jpg": big}))
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"
    assert admin.get(f"/projects/{pid}/ingest-runs").json() == []
    assert _staged_files(env) == []
    assert _upload(admin, pid, {"small.png": small})["added"] == 1


def test_an_upload_without_files_is_refused(admin: Api, project: dict[str, Any]) -> None:
    response = admin.post(f"/projects/{project['id']}/uploads", data={"note": "no files"})
    assert response.status_code == 422
    assert admin.get(f"/projects/{project['id']}/ingest-runs").json() == []


def test_the_file_is_served_with_its_decoded_type_and_nosniff(admin: Api, project: dict[str, Any]) -> None:
    png = GOOD["b.png"][0]
    _upload(admin, project["id"], {"looks-like.jpg": png, "page.html": GOOD["c.webp"][0]})
    images = _images(admin, project["id"])

    served = admin.get(f"/images/{images['looks-like.jpg']['id']}/file")
    assert served.status_code == 200
    assert served.content == png
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in served.headers["content-security-policy"]
    webp = admin.get(f"/images/{images['page.html']['id']}/file")
    assert webp.headers["content-type"] == "image/webp"
    assert "html" not in webp.headers.get("content-disposition", "")


def test_thumbnails_are_webp_no_larger_than_the_configured_side(admin: Api, project: dict[str, Any]) -> None:
    _upload(admin, project["id"], {name: data for name, (data, _) in GOOD.items()})
    for image in _images(admin, project["id"]).values():
        thumb = admin.get(f"/images/{image['id']}/thumbnail")
        assert thumb.status_code == 200
        assert thumb.headers["content-type"] == "image/webp"
        assert thumb.headers["x-content-type-options"] == "nosniff"
        assert thumb.content[:4] == b"RIFF" and thumb.content[8:12] == b"WEBP"
        with Image.open(io.BytesIO(thumb.content)) as opened:
            assert opened.format == "WEBP"
            assert max(opened.size) == 256
            assert opened.size == (256, 224)  # 320 x 280, aspect kept


def test_an_exif_rotated_jpeg_is_stored_upright(admin: Api, project: dict[str, Any]) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # shown after turning 90 degrees clockwise
    original = _encode(_picture(400, 300, seed=5), "JPEG", quality=90, exif=exif.tobytes())
    _upload(admin, project["id"], {"phone.jpg": original})
    image = _images(admin, project["id"])["phone.jpg"]
    assert (image["width"], image["height"]) == (300, 400)

    stored = admin.get(f"/images/{image['id']}/file").content
    assert stored != original
    with Image.open(io.BytesIO(stored)) as upright:
        assert upright.size == (300, 400)
        assert upright.getexif().get(ExifTags.Base.Orientation, 1) == 1
        # The red block of the top-left corner is now top-right, as a viewer would show it.
        rgb = np.asarray(upright.convert("RGB"), dtype=np.float64)
    top_right, top_left = rgb[10:60, 240:290].mean(axis=(0, 1)), rgb[10:60, 10:60].mean(axis=(0, 1))
    assert top_right[0] > 220 and max(top_right[1:]) < 40, top_right
    assert max(top_left[1:]) > 80, top_left  # noise, not the red block
    # The hash is of the bytes as offered: the same photo offered again is a duplicate.
    assert _upload(admin, project["id"], {"again.jpg": original})["duplicates"] == 1
