from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.workers.conftest import write_image
from workers.contracts import ImageRef
from workers.inference.images import ImageLoadError, load_image


def _ref(path: Path, uri: str | None = None) -> ImageRef:
    return ImageRef(image_id=1, uri=uri or str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def test_file_uris_and_plain_paths_decode_to_rgb(tmp_path: Path) -> None:
    ref = write_image(tmp_path / "a b.png", (20, 30), seed=1, fmt="PNG")
    assert " " not in ref.uri  # the URI is percent-encoded and decoded back to the path
    by_uri = load_image(ref)
    by_path = load_image(_ref(tmp_path / "a b.png"))
    assert by_uri.mode == "RGB" and by_uri.size == (20, 30)
    assert np.array_equal(np.asarray(by_uri), np.asarray(by_path))


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("gs://bucket/key.jpg", "unsupported_uri"),
        ("https://example.com/x.jpg", "unsupported_uri"),
        ("file://host/x.jpg", "unsupported_uri"),
    ],
)
def test_uris_this_worker_cannot_read_are_typed_errors(uri: str, code: str) -> None:
    with pytest.raises(ImageLoadError) as error:
        load_image(ImageRef(image_id=1, uri=uri, sha256="0" * 64))
    assert error.value.code == code


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError) as error:
        load_image(ImageRef(image_id=1, uri=str(tmp_path / "gone.jpg"), sha256="0" * 64))
    assert error.value.code == "not_found"


def test_changed_bytes_fail_the_checksum(tmp_path: Path) -> None:
    ref = write_image(tmp_path / "x.jpg", (20, 20), seed=2)
    (tmp_path / "x.jpg").write_bytes((tmp_path / "x.jpg").read_bytes() + b"\0")
    with pytest.raises(ImageLoadError) as error:
        load_image(ref)
    assert error.value.code == "checksum_mismatch"


def test_garbage_and_truncated_files_are_unreadable(tmp_path: Path) -> None:
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    write_image(tmp_path / "t.jpg", (64, 64), seed=3)
    truncated = (tmp_path / "t.jpg").read_bytes()[:200]
    (tmp_path / "t.jpg").write_bytes(truncated)
    for path in (tmp_path / "junk.jpg", tmp_path / "t.jpg"):
        with pytest.raises(ImageLoadError) as error:
            load_image(_ref(path))
        assert error.value.code == "unreadable"


def test_size_limits_are_enforced_before_decoding(tmp_path: Path) -> None:
    tiny = write_image(tmp_path / "tiny.png", (4, 40), seed=4, fmt="PNG")
    big = write_image(tmp_path / "big.png", (100, 100), seed=5, fmt="PNG")
    with pytest.raises(ImageLoadError) as small_error:
        load_image(tiny)
    with pytest.raises(ImageLoadError) as big_error:
        load_image(big, max_pixels=9_999)
    assert (small_error.value.code, big_error.value.code) == ("too_small", "too_large")


def test_transparency_is_flattened_on_white(tmp_path: Path) -> None:
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(_ref(tmp_path / "clear.png")).getpixel((5, 5)) == (255, 255, 255)


def test_jpeg_draft_decodes_smaller_but_never_below_the_requested_side(tmp_path: Path) -> None:
    ref = write_image(tmp_path / "large.jpg", (1600, 1200), seed=6)
    drafted = load_image(ref, draft_to=300)
    assert 300 <= min(drafted.size) < 1200
