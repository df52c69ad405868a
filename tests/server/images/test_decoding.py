"""Bad-input corpus for image ingestion, generated here: nothing is downloaded."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile

from server.images.decoding import (
    ALLOWED_FORMATS,
    DecodedImage,
    ImageRejected,
    decode_image,
    make_thumbnail,
    sniff_format,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
LIMITS: dict[str, int] = {"max_bytes": 20_000_000, "max_pixels": 40_000_000}
PILLOW_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def picture(width: int = 64, height: int = 48) -> Image.Image:
    """An RGB picture with a red block in its top-left corner, to track orientation."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256], axis=-1)
    pixels[: height // 4, : width // 4] = (255, 0, 0)
    return Image.fromarray(pixels.astype(np.uint8))


def encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=PILLOW_NAMES.get(image_format, image_format), **options)
    return out.getvalue()


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG container whose IHDR claims width x height RGB but holds ~no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def animation(image_format: str, frames: int = 3) -> bytes:
    images = [picture(40, 30).rotate(index * 90) for index in range(frames)]
    return encode(images[0], image_format, save_all=True, append_images=images[1:], duration=80)


def rejection(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, **{**LIMITS, **limits})
    assert caught.value.detail
    return caught.value.reason


def decoded(data: bytes, **limits: int) -> DecodedImage:
    return decode_image(data, **{**LIMITS, **limits})


# --- what the bytes are -------------------------------------------------------------------


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    upload = tmp_path / "portrait.jpg"
    upload.write_text("<html><script>alert(1)</script></html>")
    assert rejection(upload.read_bytes()) == "not_an_image"


def test_png_named_jpg_is_judged_by_content(tmp_path: Path) -> None:
    upload = tmp_path / "portrait.jpg"
    upload.write_bytes(encode(picture(), "png"))
    result = decoded(upload.read_bytes())
    assert (result.format, result.mime) == ("png", "image/png")


@pytest.mark.parametrize("pillow_format", ["GIF", "TIFF", "BMP", "ICO"])
def test_real_image_in_a_format_outside_the_allow_list_is_format_not_allowed(
    pillow_format: str,
) -> None:
    assert rejection(encode(picture(32, 32), pillow_format)) == "format_not_allowed"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"GIF89a\x01\x00", "gif"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00", "heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "avif"),
        (b"\x00\x00\x00\x1cftypisom\x00\x00\x00\x00", None),
        (b"BM" + b"\x00" * 12 + struct.pack("<I", 40), "bmp"),
        (b"BMW is a car brand, not a bitmap", None),
        (b"%PDF-1.7", None),
        (b"\xff\xd8", None),
        (b"", None),
    ],
)
def test_sniff_format_reads_magic_bytes_only(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected


def test_empty_bytes_are_refused_as_empty() -> None:
    assert rejection(b"") == "empty"


def test_file_over_the_byte_cap_is_too_large_before_anything_is_parsed() -> None:
    data = encode(picture(), "png")
    assert rejection(data, max_bytes=len(data) - 1) == "too_large"
    assert decoded(data, max_bytes=len(data)).width == 64


# --- pixel bombs ---------------------------------------------------------------------------


BOMB_SCRIPT = textwrap.dedent(
    """
    import resource, struct, sys, time, zlib
    from PIL import Image
    from server.images.decoding import ImageRejected, decode_image

    # Pillow's own bomb guard is switched off: the refusal must come from decode_image.
    Image.MAX_IMAGE_PIXELS = None
    limit = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        bytearray(3 << 29)
    except MemoryError:
        pass
    else:
        sys.exit("the address-space limit does not bite; the test would prove nothing")

    data = sys.stdin.buffer.read()
    started = time.monotonic()
    try:
        decode_image(data, max_bytes=1 << 20, max_pixels=50_000_000)
    except ImageRejected as exc:
        print(exc.reason, round(time.monotonic() - started, 3))
    """
)


def test_png_claiming_50000_by_50000_is_refused_from_the_header_without_allocating() -> None:
    # 50,000 x 50,000 RGB would need ~10 GB; the child may map at most 1 GiB, so decoding
    # the pixels, or merely allocating the buffer, would end in MemoryError instead.
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    child = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT],
        input=png_claiming(50_000, 50_000),
        capture_output=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")
    reason, seconds = child.stdout.decode().split()
    assert reason == "too_many_pixels"
    assert float(seconds) < 1.0


def test_pixel_limit_is_checked_before_decoding() -> None:
    # Under Pillow's own bomb threshold, so only decode_image's header check can refuse it;
    # had the pixels been decoded first, the tiny IDAT would have answered `truncated`.
    bomb = png_claiming(4_000, 4_000)
    assert rejection(bomb, max_pixels=1_000_000) == "too_many_pixels"
    assert rejection(bomb, max_pixels=16_000_000) == "truncated"


def test_pillow_decompression_bomb_error_becomes_too_many_pixels() -> None:
    assert rejection(png_claiming(50_000, 50_000), max_pixels=10**12) == "too_many_pixels"


def test_pixel_limit_counts_width_times_height() -> None:
    data = encode(picture(64, 48), "jpeg")
    assert rejection(data, max_pixels=64 * 48 - 1) == "too_many_pixels"
    assert decoded(data, max_pixels=64 * 48).height == 48


# --- frames --------------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["webp", "png"])
def test_animation_over_the_frame_cap_is_refused(image_format: str) -> None:
    data = animation(image_format, frames=3)
    assert rejection(data) == "too_many_frames"
    assert rejection(data, max_frames=2) == "too_many_frames"


@pytest.mark.parametrize("image_format", ["webp", "png"])
def test_animation_within_the_frame_cap_is_accepted_with_its_frame_count(
    image_format: str,
) -> None:
    result = decoded(animation(image_format, frames=3), max_frames=3)
    assert (result.format, result.frames, result.width, result.height) == (image_format, 3, 40, 30)


def test_jpeg_with_mpf_pictures_counts_as_one_frame() -> None:
    # Phones store depth maps and previews as extra MPF pictures; they are not animation.
    first, second = picture(40, 30), picture(40, 30).rotate(180)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    result = decoded(data)
    assert (result.format, result.frames, result.data) == ("jpeg", 1, data)


# --- damaged files -------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file_is_refused_as_truncated(image_format: str, keep: float) -> None:
    data = encode(picture(), image_format)
    assert rejection(data[: max(32, int(len(data) * keep))]) == "truncated"


def test_jpeg_missing_only_its_end_marker_is_truncated() -> None:
    data = encode(picture(), "jpeg")
    assert data.endswith(b"\xff\xd9")
    assert rejection(data[:-2]) == "truncated"


def test_jpeg_whose_scan_is_not_decodable_is_corrupt() -> None:
    data = encode(picture(), "jpeg")
    scan_start = data.index(b"\xff\xda")
    assert rejection(data[:scan_start] + b"\xff\xda" + b"\x00" * 3 + b"\xff\xd9") == "corrupt"


def test_png_with_garbage_image_data_after_a_valid_header_is_corrupt() -> None:
    valid = png_claiming(64, 48)
    header = valid[: valid.index(b"IDAT") - 4]
    garbage = bytes(random.Random(7).randrange(256) for _ in range(2_000))
    data = header + png_chunk(b"IDAT", garbage) + png_chunk(b"IEND", b"")
    assert rejection(data) == "corrupt"


def test_png_with_a_bad_chunk_checksum_is_corrupt() -> None:
    # Pillow does not check IDAT checksums: bit rot would otherwise pass as pixels.
    data = bytearray(encode(picture(), "png"))
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    data[idat + 4 + length] ^= 0xFF
    assert rejection(bytes(data)) == "corrupt"


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
def test_mutated_files_either_decode_or_are_rejected_never_crash(image_format: str) -> None:
    original = encode(picture(48, 32), image_format)
    generator = random.Random(f"mutate-{image_format}")
    for _ in range(150):
        mutated = bytearray(original)
        for _ in range(generator.randint(1, 8)):
            mutated[generator.randrange(len(mutated))] = generator.randrange(256)
        try:
            decode_image(bytes(mutated), **LIMITS)
        except ImageRejected as rejected:
            assert rejected.reason in {
                "truncated",
                "corrupt",
                "too_many_pixels",
                "not_an_image",
                "format_not_allowed",
                "too_many_frames",
            }


def test_decoding_refuses_to_run_when_truncated_images_are_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(encode(picture(), "jpeg")[:300], **LIMITS)


# --- good files ----------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
def test_good_file_is_stored_unchanged_with_its_size_and_sha256(image_format: str) -> None:
    data = encode(picture(64, 48), image_format)
    result = decoded(data)
    digest = hashlib.sha256(data).hexdigest()
    assert result == DecodedImage(
        format=image_format,
        mime=ALLOWED_FORMATS[image_format],
        width=64,
        height=48,
        data=data,
        sha256_original=digest,
        sha256=digest,
        oriented=False,
        frames=1,
    )


# --- EXIF orientation ----------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
def test_exif_orientation_6_is_applied_once_at_ingest(image_format: str) -> None:
    # Orientation 6: the camera was turned; viewers rotate 90 degrees clockwise.
    data = encode(picture(64, 48), image_format, exif=exif_with_orientation(6))
    result = decoded(data)

    assert (result.width, result.height, result.oriented) == (48, 64, True)
    assert result.sha256_original == hashlib.sha256(data).hexdigest()
    assert result.sha256 == hashlib.sha256(result.data).hexdigest() != result.sha256_original
    with Image.open(io.BytesIO(result.data)) as stored:
        assert stored.format == PILLOW_NAMES[image_format]
        assert stored.size == (48, 64)
        assert ExifTags.Base.Orientation not in stored.getexif()
        red, green, blue = stored.convert("RGB").getpixel((44, 3))  # type: ignore[misc]
        assert red > 200 and green < 60 and blue < 60, "the red corner moved to the top right"

    again = decoded(result.data)
    assert (again.width, again.height, again.oriented) == (48, 64, False)
    assert again.data == result.data


def test_exif_orientation_1_keeps_the_original_bytes() -> None:
    data = encode(picture(), "jpeg", exif=exif_with_orientation(1))
    result = decoded(data)
    assert (result.oriented, result.data, result.width) == (False, data, 64)


def test_rotated_animation_turns_every_frame_upright() -> None:
    frames = [picture(40, 30), picture(40, 30).rotate(180)]
    data = encode(
        frames[0],
        "webp",
        save_all=True,
        append_images=frames[1:],
        duration=80,
        exif=exif_with_orientation(8),
    )
    result = decoded(data, max_frames=2)
    assert (result.width, result.height, result.frames, result.oriented) == (30, 40, 2, True)
    again = decoded(result.data, max_frames=2)
    assert (again.width, again.height, again.frames, again.oriented) == (30, 40, 2, False)


# --- derived images and metrics ------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
def test_thumbnail_is_rgb_webp_with_aspect_preserved(image_format: str) -> None:
    thumbnail = make_thumbnail(encode(picture(400, 300), image_format), max_side=100)
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert (image.format, image.mode, image.size) == ("WEBP", "RGB", (100, 75))


def test_thumbnail_composites_transparency_on_white() -> None:
    transparent = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    thumbnail = make_thumbnail(encode(transparent, "png"), max_side=20)
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert np.asarray(image.convert("L")).min() > 240


def test_thumbnail_of_16_bit_grey_png_keeps_its_tones() -> None:
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (32, 1))
    thumbnail = make_thumbnail(encode(Image.fromarray(ramp), "png"), max_side=64)
    with Image.open(io.BytesIO(thumbnail)) as image:
        grey = np.asarray(image.convert("L"), dtype=np.float64)
    assert grey[:, :4].mean() < 30 and grey[:, -4:].mean() > 220


def test_thumbnail_never_upscales() -> None:
    thumbnail = make_thumbnail(encode(picture(40, 30), "png"), max_side=256)
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.size == (40, 30)


def test_thumbnail_of_non_image_bytes_is_rejected() -> None:
    with pytest.raises(ImageRejected):
        make_thumbnail(b"not an image at all")
