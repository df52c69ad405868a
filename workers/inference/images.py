"""Reading one image named by an ImageRef into an RGB PIL image, or a typed per-image failure.

EXIF orientation was applied upstream at ingest, so pixels are used as stored. Every failure that
is the image's fault becomes an `ImageLoadError` with a contract error code; the pipeline turns it
into that image's error and carries on with the rest of the batch.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from PIL import Image, UnidentifiedImageError

from workers.contracts import ImageError, ImageErrorCode, ImageRef

DEFAULT_MAX_PIXELS = 100_000_000
MIN_SIDE = 8


class ImageLoadError(Exception):
    def __init__(self, code: ImageErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ImageErrorCode = code
        self.detail = detail

    def as_contract(self) -> ImageError:
        return ImageError(code=self.code, detail=self.detail)


def local_path(uri: str) -> Path:
    """The file a `file://` URI or plain path names (s3:// is read by `read_bytes`)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ImageLoadError("unsupported_uri", f"remote file URI {uri!r}")
        return Path(url2pathname(unquote(parsed.path)))
    # A one-letter scheme is a Windows drive ("C:\\..."), not a URI.
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ImageLoadError("unsupported_uri", f"cannot read {parsed.scheme}:// URIs")
    return Path(uri)


def read_bytes(ref: ImageRef) -> bytes:
    if ref.uri.startswith("s3://"):
        data = _read_s3(ref.uri)
    else:
        path = local_path(ref.uri)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageLoadError("not_found", f"no file at {path}") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise ImageLoadError("unreadable", f"{type(exc).__name__} reading {path}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise ImageLoadError("checksum_mismatch", f"sha256 of {ref.uri} is {digest}")
    return data


def _read_s3(uri: str) -> bytes:
    """An object of the deployment's S3-compatible store (AA_STORAGE__ENDPOINT_URL names a
    non-AWS one; credentials from the standard AWS settings, as the server's)."""
    import s3fs

    endpoint = os.environ.get("AA_STORAGE__ENDPOINT_URL") or None
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": endpoint} if endpoint else {}, use_listings_cache=False
    )
    try:
        data: bytes = fs.cat_file(uri.removeprefix("s3://"))
    except FileNotFoundError:
        raise ImageLoadError("not_found", f"no object at {uri}") from None
    except PermissionError as exc:
        raise ImageLoadError("unreadable", f"{type(exc).__name__} reading {uri}") from None
    return data


def decode(data: bytes, *, draft_to: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode to RGB. `draft_to` lets JPEG decode at a reduced scale no smaller than that side,
    which is most of the decoding cost saved when the model looks at 224-384 px anyway."""
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise ImageLoadError("too_large", f"{width}x{height} exceeds {max_pixels} pixels")
        if min(width, height) < MIN_SIDE:
            raise ImageLoadError("too_small", f"{width}x{height} is under {MIN_SIDE} px")
        if draft_to is not None and image.format == "JPEG" and min(width, height) > draft_to:
            # draft() picks the smallest DCT scale that is still at least the requested size.
            ratio = draft_to / min(width, height)
            image.draft("RGB", (max(1, round(width * ratio)), max(1, round(height * ratio))))
        image.load()
        return _to_rgb(image)
    except UnidentifiedImageError:
        raise ImageLoadError("unreadable", "not an image format Pillow can decode") from None
    # PIL signals corrupt or truncated data with these; anything else is a bug and propagates.
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageLoadError("unreadable", f"{type(exc).__name__}: {exc}") from None


def load_image(
    ref: ImageRef, *, draft_to: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    return decode(read_bytes(ref), draft_to=draft_to, max_pixels=max_pixels)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    # Transparent areas over white, not the black that a bare convert("RGB") leaves.
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
