"""Decode any image a user hands us into 8-bit RGB, or say clearly why not.

Real folders hold CMYK and grayscale JPEGs, 16-bit PNGs and TIFFs, palette and gray+alpha images, rotated
phone photos, truncated downloads and the odd multi-hundred-megapixel scan; `load_image` turns all of them
into the same thing (an RGB `PIL.Image.Image`) and every failure into one `ImageDecodeError` naming the file.

The decode budget is decided from the header, before any pixel is decoded: an image whose decoded pixels
(after JPEG DCT scaling) exceed ``PIL.Image.MAX_IMAGE_PIXELS``, or, when it will be resized, whose sides
differ by more than `MAX_ASPECT_RATIO` (a 1 x 20000 strip), is refused in milliseconds with its reason.
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)

ImageSource = str | os.PathLike | Image.Image | np.ndarray | bytes | bytearray | memoryview

# Reduce-on-decode keeps at least this factor of headroom over the size the eval resize needs, so the final
# filter still averages several source pixels per output pixel. Pillow's docs for `reducing_gap`: 2 is
# close to fair resampling, 3 indistinguishable from it; `Image.thumbnail` uses 2 the same way.
_REDUCING_GAP = 2.0

# Sides differing by more than this are refused when the image will be resized (``target_size``): a center
# crop would see under 1% of it, and covering a 224-pixel square with a 1 x 20000 strip scales it 224-fold
# (a 224 x 4,480,000 intermediate, GBs). Nothing a classifier can learn from lives in such a strip.
MAX_ASPECT_RATIO = 100

_FIX_CORRUPT = "re-save the file with an image editor or remove it from the folder"

# Errors Pillow's decoders raise on malformed data (beyond OSError, which covers truncation and
# UnidentifiedImageError): PNG chunk parsing raises SyntaxError, struct/zlib errors escape some plugins.
_DECODER_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error, IndexError)


class ImageDecodeError(ValueError):
    """An image source that cannot be turned into RGB: names the file, the reason and the fix."""

    def __init__(self, path: str, reason: str, fix: str = _FIX_CORRUPT) -> None:
        self.path = path
        self.reason = reason
        self.fix = fix
        super().__init__(f"{path}: cannot decode ({reason}); {fix}")


def has_image_extension(path: str | os.PathLike) -> bool:
    """True if ``path`` ends in one of `IMAGE_EXTENSIONS`, in any letter case."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def non_regular_reason(mode: int) -> str:
    """Why a file of ``mode`` (``os.stat().st_mode``) is not read as an image: what it is instead."""
    if stat.S_ISDIR(mode):
        return "a folder, not a regular file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def load_image(
    source: ImageSource,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    target_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode ``source`` into an 8-bit RGB image, upright (EXIF orientation applied).

    ``source`` is a file path, a PIL image, encoded bytes, or a numpy array (HxW, HxWx1, HxWx3 or HxWx4;
    uint8, uint16 scaled by 1/257, or float in 0..1). Transparent pixels are composited on ``background``.
    16-bit images are scaled to 8 bits, never clipped.

    ``target_size`` (height, width) is the size the caller will resize to, keeping aspect ratio so that the
    image covers it. When given, large images are decoded at reduced size (JPEG DCT scaling via
    `Image.draft`, integer box reduction otherwise), but never below twice the size that resize produces;
    images already smaller are left as they are. It only saves time: the final resize still sees more
    pixels than it outputs.

    Raises `ImageDecodeError` for a missing, empty, truncated or non-image file, one over the decode budget
    (`check_decode_budget`: decided from the header, before decoding), and for a path that is not a regular
    file (a FIFO, socket or device is never opened: reading one can block forever).
    """
    if target_size is not None and (
        not isinstance(target_size, (tuple, list)) or len(target_size) != 2 or min(target_size) < 1
    ):
        raise ValueError(f"load_image: target_size must be (height, width) in pixels, got {target_size!r}")
    if isinstance(source, np.ndarray):
        image = _image_from_array(source)
        name = f"<array {source.shape} {source.dtype}>"
        check_decode_budget(name, image.size, target_size=target_size, in_memory=True)
    elif isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "<PIL image>"
        check_decode_budget(name, source.size, target_size=target_size, in_memory=True)
        image = _decode(source, name, owned=False)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name = f"<{len(source)} bytes>"
        if len(source) == 0:
            raise ImageDecodeError(name, "empty input, 0 bytes", "pass the encoded file contents")
        image = _open_and_decode(io.BytesIO(source), name, target_size)
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        _check_regular_file(name)
        image = _open_and_decode(name, name, target_size)
    else:
        raise TypeError(
            f"load_image: source must be a path, PIL image, numpy array or bytes, got {type(source).__name__}"
        )
    return _to_rgb(image, background, name, target_size)


def _check_regular_file(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found", "check the path") from None
    except OSError as err:
        raise ImageDecodeError(path, err.strerror or type(err).__name__, "check the path") from None
    if not stat.S_ISREG(mode):
        raise ImageDecodeError(path, non_regular_reason(mode), "pass an image file")


def _open_and_decode(fp: str | io.BytesIO, name: str, target_size: tuple[int, int] | None) -> Image.Image:
    # DecompressionBombWarning fires for every image above MAX_IMAGE_PIXELS; a folder of large scans would
    # print a wall of them. One info line per file says the same. (catch_warnings is process-wide state
    # before Python 3.14: under threads the worst case is one stray warning.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(fp)
        except FileNotFoundError:
            raise ImageDecodeError(name, "file not found", "check the path") from None
        except (IsADirectoryError, PermissionError) as err:
            raise ImageDecodeError(name, err.strerror or type(err).__name__, "check the path") from None
        except Image.DecompressionBombError as err:
            raise _bomb_error(name, err) from None
        except UnidentifiedImageError:
            raise _unidentified_error(fp, name) from None
        except _DECODER_ERRORS as err:
            raise ImageDecodeError(name, _describe(err)) from None
    with opened:
        stored = opened.size
        try:
            if target_size is not None and opened.format == "JPEG":
                _draft(opened, target_size)  # DCT scaling: decodes 1/2, 1/4 or 1/8 of each side
        except _DECODER_ERRORS as err:
            raise ImageDecodeError(name, _describe(err)) from None
        check_decode_budget(name, stored, opened.size, target_size)
        return _decode(opened, name, owned=True)


def check_decode_budget(
    name: str,
    stored: tuple[int, int],
    decoded: tuple[int, int] | None = None,
    target_size: tuple[int, int] | None = None,
    *,
    in_memory: bool = False,
) -> None:
    """Refuse, from the header, an image that would cost too much to decode or to resize.

    ``stored``: (width, height) in the file; ``decoded``: what the decoder will produce (smaller for a
    drafted JPEG); ``target_size``: (height, width) the caller will resize to, or None; ``in_memory``: the
    pixels are already decoded (an array), so only the resize is budgeted. Raises
    `ImageDecodeError` naming the file, what was found, the limit and the fix.
    """
    width, height = stored
    if width < 1 or height < 1:
        raise ImageDecodeError(name, f"{width}x{height} pixels, an empty image", "remove it from the folder")
    decoded_w, decoded_h = decoded or stored
    limit = Image.MAX_IMAGE_PIXELS
    if limit and not in_memory and decoded_w * decoded_h > limit:
        raise ImageDecodeError(
            name,
            f"{width}x{height} pixels ({width * height / 1e6:.1f} megapixels) is over the decode budget of "
            f"{limit / 1e6:.1f} megapixels",
            f"downscale it (e.g. to 4000 pixels on the long side); if you trust the file, raise "
            f"PIL.Image.MAX_IMAGE_PIXELS (now {limit})",
        )
    if target_size is not None and max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageDecodeError(
            name,
            f"{width}x{height} pixels, aspect ratio {max(width, height) / min(width, height):.0f}:1 is over "
            f"{MAX_ASPECT_RATIO}:1 (a strip, not a picture)",
            "crop it to the region that shows the subject, or remove it from the folder",
        )


def _decode(image: Image.Image, name: str, *, owned: bool) -> Image.Image:
    """Load pixels (detecting truncation) and apply EXIF orientation. ``owned``: the image came from
    our own `Image.open`, so it may be transposed in place."""
    try:
        image.load()
        if owned:
            ImageOps.exif_transpose(image, in_place=True)
            return image
        return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as err:
        raise _bomb_error(name, err) from None
    except MemoryError:
        raise ImageDecodeError(
            name, f"out of memory decoding {image.width}x{image.height} pixels", "downscale the file"
        ) from None
    except _DECODER_ERRORS as err:
        raise ImageDecodeError(name, _describe(err)) from None


def _draft(image: Image.Image, target_size: tuple[int, int]) -> None:
    target_h, target_w = target_size
    if _orientation(image) in (5, 6, 7, 8):  # stored rotated by 90 degrees: pixels are (w, h) on disk
        target_h, target_w = target_w, target_h
    # Pillow's draft picks the largest DCT scale (1/2, 1/4, 1/8) that keeps the image >= the requested size.
    image.draft(image.mode, (math.ceil(target_w * _REDUCING_GAP), math.ceil(target_h * _REDUCING_GAP)))


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))  # 0x0112: EXIF Orientation
    except Exception:  # a broken EXIF block must not make a decodable image fail: treat as upright
        return 1


def _to_rgb(
    image: Image.Image, background: tuple[int, int, int], name: str, target_size: tuple[int, int] | None
) -> Image.Image:
    """Any Pillow mode -> RGB, alpha composited on ``background``, reduced toward ``target_size``.

    Modes that `Image.reduce` handles are reduced first, so the conversions below touch 1/factor^2 of the
    pixels (reduce premultiplies alpha, so compositing after it gives what compositing before would)."""
    if target_size is not None and image.mode in _REDUCIBLE_MODES:
        factor = _reduction_factor(image.size, target_size)
        if factor > 1:
            image = image.reduce(factor)
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # Pillow's own I -> L conversion clips at 255, turning most 16-bit images white: scale instead.
        # Mode I (32-bit) is what some decoders give 16-bit data; it is read as 0..65535 too.
        image = Image.fromarray(_scale_16bit(np.asarray(image)))
    elif mode == "F":
        image = Image.fromarray(_scale_float(np.asarray(image), name))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = _composite(image.convert("RGBA"), background)
    elif image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except ValueError:
            raise ImageDecodeError(
                name, f"pixel mode {image.mode!r} has no RGB conversion", "convert the file to RGB"
            ) from None
    if target_size is not None:
        factor = _reduction_factor(image.size, target_size)
        if factor > 1:
            image = image.reduce(factor)
    return image


# Modes Image.reduce accepts (not P, 1 or I;16: those are converted first, then reduced).
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"})


def _reduction_factor(size: tuple[int, int], target_size: tuple[int, int]) -> int:
    """Largest integer factor that keeps (w, h) ``size`` >= ``_REDUCING_GAP`` x the size the cover-resize to
    (h, w) ``target_size`` will produce."""
    width, height = size
    target_h, target_w = target_size
    return max(1, math.floor(min(width / target_w, height / target_h) / _REDUCING_GAP))


def _composite(rgba: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    out = Image.new("RGB", rgba.size, tuple(background))
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _image_from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(
            f"load_image: array of shape {array.shape} is not an image; expected HxW (gray), HxWx3 (RGB) "
            "or HxWx4 (RGBA)"
        )
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = _scale_16bit(array)
    elif array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        pixels = _scale_float(array, "load_image: float array")
    else:
        raise TypeError(
            f"load_image: array dtype {array.dtype} is not supported; expected uint8, uint16 or float in "
            "0..1 (e.g. array.astype(np.uint8) for 0..255 integers)"
        )
    return Image.fromarray(np.ascontiguousarray(pixels))


def _scale_16bit(array: np.ndarray) -> np.ndarray:
    # int32 in place, not int64 copies: a large 16-bit RGB image must not cost 3 x 8 bytes per pixel twice
    wide = array.astype(np.int32)
    np.clip(wide, 0, 65535, out=wide)
    wide += 128
    wide //= 257  # round(x / 257): 65535 -> 255, 257 * v -> v exactly
    return wide.astype(np.uint8)


def _scale_float(array: np.ndarray, name: str) -> np.ndarray:
    if array.size and not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
        raise ImageDecodeError(
            name,
            f"float pixel values span {np.nanmin(array):g}..{np.nanmax(array):g}, expected 0..1",
            "divide 0..255 data by 255, or pass uint8",
        )
    return np.round(array.astype(np.float64) * 255.0).astype(np.uint8)


def _bomb_error(name: str, err: Exception) -> ImageDecodeError:
    return ImageDecodeError(
        name,
        str(err).rstrip("."),
        f"if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS (now {Image.MAX_IMAGE_PIXELS}); "
        "otherwise downscale it or remove it from the folder",
    )


def _unidentified_error(fp: str | io.BytesIO, name: str) -> ImageDecodeError:
    empty = fp.getbuffer().nbytes == 0 if isinstance(fp, io.BytesIO) else os.path.getsize(fp) == 0
    if empty:
        return ImageDecodeError(name, "empty file, 0 bytes", "re-download or remove it from the folder")
    return ImageDecodeError(
        name,
        "not an image format Pillow recognizes",
        "check that it is a JPEG, PNG, WebP, BMP, GIF or TIFF image; re-save it or remove it from the folder",
    )


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if "truncated" in text.lower():
        return f"truncated file: {text}"
    return f"corrupt or truncated data: {text}"
