"""Safe decoding of untrusted image bytes: the only door through which pixels enter.

`decode_image` judges a file by its content, never its name, and in an order that keeps a
hostile file cheap to refuse:

    1. byte size (empty, too_large)
    2. magic bytes (not_an_image, format_not_allowed), container end (truncated)
    3. header only: width x height (too_many_pixels) and frame count (too_many_frames),
       before a single pixel is decoded
    4. full decode of every admitted frame (truncated, corrupt)
    5. EXIF orientation applied exactly once: the stored bytes are upright and carry no
       orientation tag, so the UI, the labelers and the exports share one coordinate frame

Exceptions:

    ImageRejected   reason: empty | too_large | not_an_image | format_not_allowed |
                            too_many_pixels | too_many_frames | truncated | corrupt

Every error Pillow raises on bad data becomes ImageRejected. MemoryError, RecursionError and
anything raised outside Pillow are not judgements about the file and propagate.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError

ALLOWED_FORMATS: Final[dict[str, str]] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}

# Pillow format names each allowed format may open as. A JPEG carrying extra MPF pictures
# (depth maps, previews: common on phones) opens as MPO; only its primary picture is used.
_PILLOW_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "jpeg": ("JPEG", "MPO"),
    "png": ("PNG",),
    "webp": ("WEBP",),
}

# What Pillow raises on bad data (its own fuzz tests list the same families). MemoryError is
# deliberately absent. IndexError, KeyError and TypeError come from malformed EXIF and
# chunk tables; UserWarning ("Corrupt EXIF data") only where warnings are made errors. The
# try blocks below wrap Pillow calls only, so these cannot hide our own bugs.
_PILLOW_DATA_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    NotImplementedError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    UserWarning,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

_SNIFF_BYTES: Final = 32
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_CHUNK: Final = 2**31 - 1
_JPEG_QUALITY: Final = 95
_THUMBNAIL_QUALITY: Final = 80
_DETAIL_CHARS: Final = 200


class ImageRejected(Exception):
    """The bytes are not an image this platform stores. `reason` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedImage:
    format: str
    mime: str
    width: int
    height: int
    data: bytes
    sha256_original: str
    sha256: str
    oriented: bool
    frames: int


# Fixed-offset signatures. Formats outside ALLOWED_FORMATS are listed so that a real image
# in the wrong format is told `format_not_allowed`, not `not_an_image`.
_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\xff\xd8\xff", "jpeg"),
    (_PNG_SIGNATURE, "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jpeg2000"),
    (b"\xff\x4f\xff\x51", "jpeg2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jpegxl"),
    (b"\xff\x0a", "jpegxl"),
    (b"8BPS", "psd"),
    (b"qoif", "qoi"),
    (b"DDS ", "dds"),
    (b"\x76\x2f\x31\x01", "openexr"),
    (b"\x00\x00\x01\x00", "ico"),
    (b"\x00\x00\x02\x00", "ico"),
)
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_BMP_INFO_HEADER_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})


def sniff_format(head: bytes) -> str | None:
    """The image format named by the magic bytes at the start of `head`, or None.

    Returns a key of ALLOWED_FORMATS, or another lower-case format name for images this
    platform does not store (gif, tiff, bmp, heif, avif, ...).
    """
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "avif"
        if brand in _HEIF_BRANDS:
            return "heif"
    if head[:2] == b"BM" and len(head) >= 18:
        (info_size,) = struct.unpack_from("<I", head, 14)
        if info_size in _BMP_INFO_HEADER_SIZES:
            return "bmp"
    return None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, max_frames: int = 1) -> DecodedImage:
    """Validate untrusted bytes and return what to store, or raise ImageRejected.

    `data` of the result is the input itself when no EXIF rotation was needed, else the
    upright image re-encoded in the same format (JPEG quality 95, PNG, lossless WebP)
    without the orientation tag. Decoding that result again is a no-op.
    """
    if not data:
        raise ImageRejected("empty", "the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"the file has {len(data)} bytes; the limit is {max_bytes}")
    image_format = sniff_format(data[:_SNIFF_BYTES])
    if image_format is None:
        raise ImageRejected("not_an_image", "the content is not a recognised image format")
    if image_format not in ALLOWED_FORMATS:
        allowed = ", ".join(sorted(ALLOWED_FORMATS))
        raise ImageRejected(
            "format_not_allowed", f"{image_format} images are not accepted (allowed: {allowed})"
        )
    _require_strict_truncation()
    _check_container_end(data, image_format)

    with _opened(data, image_format) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise ImageRejected(
                "too_many_pixels",
                f"the header declares {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            )
        frames = _frame_count(im, image_format)
        if frames > max_frames:
            raise ImageRejected(
                "too_many_frames", f"the image has {frames} frames; the limit is {max_frames}"
            )
        _load_frames(im, frames)
        oriented = _orientation(im) != 1
        stored = data
        if oriented:
            stored, (width, height) = _upright(im, image_format, frames)

    sha256_original = hashlib.sha256(data).hexdigest()
    return DecodedImage(
        format=image_format,
        mime=ALLOWED_FORMATS[image_format],
        width=width,
        height=height,
        data=stored,
        sha256_original=sha256_original,
        sha256=hashlib.sha256(stored).hexdigest() if oriented else sha256_original,
        oriented=oriented,
        frames=frames,
    )


def make_thumbnail(data: bytes, max_side: int = 256) -> bytes:
    """A WebP thumbnail of stored (already upright, first frame) bytes; aspect preserved, RGB.

    Does not apply EXIF orientation: `decode_image` already did, once.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be positive, not {max_side}")
    with _opened_stored(data) as im:
        try:
            im.draft("RGB", (max_side, max_side))
            rgb = _flatten(im, "RGB")
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            rgb.save(out, format="WEBP", quality=_THUMBNAIL_QUALITY)
        except _PILLOW_DATA_ERRORS as exc:
            raise _rejection(exc) from exc
    return out.getvalue()


def _require_strict_truncation() -> None:
    # Pillow reads this module global at load time; it cannot be set per call without a
    # race between threads. Refuse to run rather than accept truncated files silently.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process; "
            "image ingestion needs it False to detect truncated files"
        )


@contextmanager
def _opened(data: bytes, image_format: str) -> Iterator[ImageFile.ImageFile]:
    """Open lazily (header only) with the one Pillow plugin the magic bytes named."""
    try:
        im = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[image_format][0]])
    except _PILLOW_DATA_ERRORS as exc:
        raise _rejection(exc) from exc
    try:
        if im.format not in _PILLOW_FORMATS[image_format]:
            raise ImageRejected("corrupt", f"the content opened as {im.format}, not as {image_format}")
        yield im
    except _PILLOW_DATA_ERRORS as exc:
        raise _rejection(exc) from exc
    finally:
        im.close()


@contextmanager
def _opened_stored(data: bytes) -> Iterator[ImageFile.ImageFile]:
    image_format = sniff_format(data[:_SNIFF_BYTES])
    if image_format not in ALLOWED_FORMATS:
        raise ImageRejected("not_an_image", "stored bytes are not an allowed image format")
    _require_strict_truncation()
    with _opened(data, image_format) as im:
        yield im


def _check_container_end(data: bytes, image_format: str) -> None:
    """Damage found from the container alone, which Pillow misses or misnames: libwebp calls
    a short file "could not create decoder object"; Pillow checks no IDAT checksum and stops
    reading a PNG once its pixels are complete, so bit rot and a lost tail go unnoticed."""
    if image_format == "webp":
        (riff_size,) = struct.unpack_from("<I", data, 4)
        if len(data) < riff_size + 8:
            raise ImageRejected(
                "truncated",
                f"the RIFF header declares {riff_size + 8} bytes; the file has {len(data)}",
            )
    elif image_format == "png":
        _check_png_chunks(data)


def _check_png_chunks(data: bytes) -> None:
    offset = len(_PNG_SIGNATURE)
    while True:
        if offset + 12 > len(data):
            raise ImageRejected("truncated", "the PNG file ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 12 + length
        if not kind.isalpha() or length > _PNG_MAX_CHUNK:
            raise ImageRejected("corrupt", f"malformed PNG chunk header at byte {offset}")
        if end > len(data):
            raise ImageRejected("truncated", "the PNG file ends inside a chunk")
        (expected,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(memoryview(data)[offset + 4 : end - 4]) != expected:
            raise ImageRejected("corrupt", f"the checksum of PNG chunk {kind.decode('ascii')} does not match")
        if kind == b"IEND":
            return
        offset = end


def _rejection(exc: BaseException) -> ImageRejected:
    if isinstance(exc, UnidentifiedImageError):
        return ImageRejected("corrupt", "the image header could not be parsed")
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageRejected("too_many_pixels", _describe(exc))
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return ImageRejected("truncated", f"the image data ends early ({_describe(exc)})")
    return ImageRejected("corrupt", f"the image data could not be decoded ({_describe(exc)})")


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    printable = "".join(c if c.isprintable() else "?" for c in text)
    return printable[:_DETAIL_CHARS]


def _frame_count(im: ImageFile.ImageFile, image_format: str) -> int:
    if image_format == "jpeg":
        # MPO extras are separate pictures, not frames of this one.
        return 1
    return int(getattr(im, "n_frames", 1))


def _load_frames(im: ImageFile.ImageFile, frames: int) -> None:
    for index in range(frames):
        if index:
            im.seek(index)
        im.load()
    if frames > 1:
        im.seek(0)
        im.load()


def _orientation(im: ImageFile.ImageFile) -> int:
    """The EXIF orientation that ImageOps.exif_transpose would apply; 1 when none."""
    value = im.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _upright(im: ImageFile.ImageFile, image_format: str, frames: int) -> tuple[bytes, tuple[int, int]]:
    """Every frame turned upright, re-encoded in the same format without the orientation tag."""
    upright: list[Image.Image] = []
    durations: list[int] = []
    for index in range(frames):
        if index:
            im.seek(index)
        upright.append(ImageOps.exif_transpose(im))
        durations.append(int(im.info.get("duration", 0)))
    first = upright[0]
    options: dict[str, Any] = {}
    exif = first.getexif()
    if len(exif):
        options["exif"] = exif.tobytes()
    if icc := im.info.get("icc_profile"):
        options["icc_profile"] = icc
    if frames > 1:
        options.update(
            save_all=True,
            append_images=upright[1:],
            duration=durations,
            loop=int(im.info.get("loop", 0)),
        )
    if image_format == "jpeg":
        options["quality"] = _JPEG_QUALITY
        sampling = JpegImagePlugin.get_sampling(im)
        if sampling >= 0:
            options["subsampling"] = sampling
        pillow_format = "JPEG"
    elif image_format == "png":
        pillow_format = "PNG"
    else:
        options.update(lossless=True, exact=True)
        pillow_format = "WEBP"
    out = io.BytesIO()
    first.save(out, format=pillow_format, **options)
    return out.getvalue(), first.size


_SIXTEEN_BIT_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def _flatten(im: Image.Image, mode: str) -> Image.Image:
    """`im` as 8-bit RGB or L: alpha composited on white, 16-bit grey scaled down."""
    if im.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(im, dtype=np.float64)
        scale = 255.0 / 65535.0 if values.size and values.max() > 255 else 1.0
        grey = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8))
        return grey.convert(mode)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert(mode)
    return im.convert(mode)
