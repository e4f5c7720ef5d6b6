import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from deadline import deadline
from PIL import Image
from skimage import data

from effnet.data import IMAGE_EXTENSIONS, ImageDecodeError, load_image
from effnet.data.images import has_image_extension

RED = (255, 0, 0)


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return data.chelsea()  # 300 x 451 x 3 uint8, a real photo


@pytest.fixture(scope="module")
def chelsea_image(chelsea: np.ndarray) -> Image.Image:
    return Image.fromarray(chelsea)


@pytest.fixture(scope="module")
def gray(chelsea_image: Image.Image) -> np.ndarray:
    return np.asarray(chelsea_image.convert("L"))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def assert_rgb(image: Image.Image, size: tuple[int, int] = (451, 300)) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == size


@pytest.mark.parametrize(
    ("suffix", "options", "max_mean_error"),
    [
        (".jpg", {"quality": 95}, 3.0),
        (".JPEG", {"quality": 95}, 3.0),
        (".png", {}, 0.0),
        (".bmp", {}, 0.0),
        (".webp", {"lossless": True}, 0.0),
        (".webp", {"quality": 90}, 4.0),
        (".tif", {}, 0.0),
        (".tiff", {"compression": "tiff_lzw"}, 0.0),
        (".gif", {}, 12.0),  # 256-color palette
    ],
)
def test_formats_decode_to_rgb(tmp_path, chelsea, chelsea_image, suffix, options, max_mean_error):
    path = tmp_path / f"chelsea{suffix}"
    chelsea_image.save(path, **options)
    image = load_image(path)
    assert_rgb(image)
    assert np.abs(pixels(image) - chelsea).mean() <= max_mean_error


def test_cmyk_jpeg_colors_survive(tmp_path, chelsea, chelsea_image):
    path = tmp_path / "cmyk.jpg"
    chelsea_image.convert("CMYK").save(path, quality=95)
    image = load_image(path)
    assert_rgb(image)
    assert np.abs(pixels(image) - chelsea).mean() < 4.0  # an inverted-CMYK bug would be ~100 off


def test_grayscale_jpeg_becomes_equal_channels(tmp_path, chelsea_image, gray):
    path = tmp_path / "gray.jpg"
    chelsea_image.convert("L").save(path, quality=95)
    out = pixels(load_image(path))
    assert out.shape == (300, 451, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(out[..., 0] - gray).mean() < 2.0


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_gray_is_scaled_not_clipped(tmp_path, gray, suffix):
    path = tmp_path / f"gray16{suffix}"
    Image.fromarray(gray.astype(np.uint16) * 257).save(path)
    with Image.open(path) as raw:
        assert raw.mode in ("I;16", "I;16B", "I")
    out = pixels(load_image(path))
    assert np.abs(out[..., 0] - gray).max() <= 1  # clipping would make nearly everything 255


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16bit_modes_from_pil_images(gray, mode):
    values = gray.astype(np.uint32) * 257
    if mode == "I":
        source = Image.fromarray(values.astype(np.int32))
    else:
        dtype = "<u2" if mode == "I;16" else ">u2"
        source = Image.frombytes(mode, (451, 300), values.astype(dtype).tobytes())
    assert source.mode == mode
    out = pixels(load_image(source))
    assert np.abs(out[..., 0] - gray).max() <= 1


def test_palette_without_transparency(tmp_path, chelsea_image):
    palette = chelsea_image.quantize(64)
    path = tmp_path / "palette.png"
    palette.save(path)
    out = pixels(load_image(path))
    np.testing.assert_array_equal(out, pixels(palette.convert("RGB")))


def _palette_with_hole(chelsea_image: Image.Image) -> Image.Image:
    """64-color palette image whose top-left 100x80 block uses a transparent (black) 65th entry."""
    holed = chelsea_image.quantize(64)
    holed.putpalette([*holed.getpalette()[: 64 * 3], 0, 0, 0])
    holed.paste(64, (0, 0, 100, 80))
    holed.info["transparency"] = 64
    return holed


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_transparency_composited_on_white(tmp_path, chelsea_image, suffix):
    path = tmp_path / f"palette_alpha{suffix}"
    _palette_with_hole(chelsea_image).save(path, transparency=64)
    out = pixels(load_image(path))
    assert (out[:80, :100] == 255).all()
    assert out[150:, 200:].mean() < 200  # the cat is still there
    on_black = pixels(load_image(path, background=(0, 0, 0)))
    assert (on_black[:80, :100] == 0).all()


def test_rgba_transparent_region_is_white(tmp_path, chelsea, chelsea_image):
    rgba = chelsea_image.convert("RGBA")
    alpha = np.full((300, 451), 255, np.uint8)
    alpha[:100, :] = 0
    alpha[100:110, :] = 128
    rgba.putalpha(Image.fromarray(alpha))
    path = tmp_path / "rgba.png"
    rgba.save(path)
    out = pixels(load_image(path))
    assert (out[:100] == 255).all()
    np.testing.assert_array_equal(out[110:], chelsea[110:])
    half = (chelsea[100:110].astype(np.float64) * 128 + 255 * 127) / 255
    assert np.abs(out[100:110] - half).max() <= 1
    gray_background = pixels(load_image(path, background=(128, 128, 128)))
    assert (gray_background[:100] == 128).all()


def test_la_gray_with_alpha(tmp_path, chelsea_image, gray):
    la = chelsea_image.convert("LA")
    alpha = np.full((300, 451), 255, np.uint8)
    alpha[:, :50] = 0
    la.putalpha(Image.fromarray(alpha))
    path = tmp_path / "la.png"
    la.save(path)
    out = pixels(load_image(path))
    assert (out[:, :50] == 255).all()
    np.testing.assert_array_equal(out[:, 50:, 1], gray[:, 50:])


def test_one_bit(tmp_path, chelsea_image):
    path = tmp_path / "bits.png"
    chelsea_image.convert("1").save(path)
    out = pixels(load_image(path))
    assert out.shape == (300, 451, 3)
    assert set(np.unique(out)) == {0, 255}


def test_animated_gif_gives_first_frame(tmp_path, chelsea, chelsea_image):
    path = tmp_path / "anim.gif"
    inverted = Image.fromarray(255 - chelsea)
    chelsea_image.save(path, save_all=True, append_images=[inverted], duration=100)
    out = pixels(load_image(path))
    assert np.abs(out - chelsea).mean() < 12.0


def _with_red_corner(chelsea: np.ndarray) -> Image.Image:
    marked = chelsea.copy()
    marked[:40, :40] = RED
    return Image.fromarray(marked)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_6_rotates_clockwise(tmp_path, chelsea, suffix):
    stored = _with_red_corner(chelsea)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored top-left ends up top-right
    path = tmp_path / f"rotated{suffix}"
    stored.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    image = load_image(path)
    assert_rgb(image, size=(300, 451))  # width and height swap
    out = pixels(image)
    assert np.abs(out[5:35, -35:-5] - RED).max() < 20
    if suffix == ".png":
        np.testing.assert_array_equal(out, np.rot90(np.asarray(stored), k=-1))


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((8, 6), np.uint8), 0),
        (np.full((8, 6, 1), 200, np.uint8), 200),
        (np.full((8, 6, 3), 77, np.uint8), 77),
        (np.full((8, 6), 65535, np.uint16), 255),
        (np.full((8, 6, 3), 257 * 100, np.uint16), 100),
        (np.full((8, 6, 3), 0.5, np.float32), 128),
        (np.ones((8, 6), np.float64), 255),
        (np.ones((8, 6), bool), 255),
    ],
)
def test_arrays(array, expected):
    out = pixels(load_image(array))
    assert out.shape == (8, 6, 3)
    assert (out == expected).all()


def test_rgba_array_composited():
    array = np.zeros((4, 5, 4), np.uint8)
    array[..., 0] = 255
    array[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    out = pixels(load_image(array, background=(0, 0, 255)))
    assert (out[:2] == RED).all()
    assert (out[2:] == (0, 0, 255)).all()


def test_bad_arrays_say_what_was_expected():
    with pytest.raises(ValueError, match=re.escape("expected 0..1")):
        load_image(np.full((4, 4, 3), 200.0))
    with pytest.raises(ValueError, match=r"shape \(4, 4, 2\)"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError, match="int64"):
        load_image(np.zeros((4, 4), np.int64))
    with pytest.raises(TypeError, match="source must be"):
        load_image(42)
    with pytest.raises(ValueError, match="target_size"):
        load_image(np.zeros((4, 4), np.uint8), target_size=224)


def test_bytes_and_pil_sources(tmp_path, chelsea_image):
    path = tmp_path / "c.png"
    chelsea_image.save(path)
    from_bytes = load_image(path.read_bytes())
    assert_rgb(from_bytes)
    palette = chelsea_image.quantize(16)
    out = load_image(palette)
    assert_rgb(out)
    assert palette.mode == "P"  # the caller's image is left alone


def test_image_extensions():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"} == IMAGE_EXTENSIONS
    assert has_image_extension("photos/CAT.JPG")
    assert has_image_extension(Path("a.TiFf"))
    assert not has_image_extension("notes.txt")


# Bad input: each raises ImageDecodeError naming the file, the reason and a fix.


def _truncated(tmp_path: Path, chelsea_image: Image.Image, suffix: str) -> Path:
    whole = tmp_path / f"whole{suffix}"
    chelsea_image.save(whole)
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files(tmp_path, chelsea_image, suffix):
    path = _truncated(tmp_path, chelsea_image, suffix)
    with pytest.raises(ImageDecodeError, match="truncated") as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot decode (")
    assert "remove it from the folder" in message
    assert "Traceback" not in message


def test_truncated_file_does_not_change_pillow_globals(tmp_path, chelsea_image):
    from PIL import ImageFile

    with pytest.raises(ImageDecodeError):
        load_image(_truncated(tmp_path, chelsea_image, ".jpg"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=re.escape("empty.jpg: cannot decode (empty file")):
        load_image(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image\n")
    with pytest.raises(ImageDecodeError, match=re.escape("notes.jpg: cannot decode (not an image")):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match=re.escape("nothere.png: cannot decode (file not found)")):
        load_image(tmp_path / "nothere.png")


def test_fifo_is_refused_without_opening(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with deadline(5), pytest.raises(ImageDecodeError, match=re.escape("x.jpg: cannot decode (a FIFO")):
        load_image(fifo)


def test_folder_is_refused(tmp_path):
    with pytest.raises(ImageDecodeError, match="a folder, not a regular file"):
        load_image(tmp_path)


def test_decompression_bomb(tmp_path, chelsea_image, monkeypatch):
    path = tmp_path / "bomb.png"
    chelsea_image.save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 451 * 300 // 3)  # the image is over twice the limit
    with pytest.raises(ImageDecodeError) as info:
        load_image(path)
    message = str(info.value)
    assert "bomb.png: cannot decode" in message
    assert "PIL.Image.MAX_IMAGE_PIXELS" in message


def test_image_over_the_pixel_budget_is_refused_from_its_header(tmp_path, chelsea_image, monkeypatch):
    path = tmp_path / "large.png"
    chelsea_image.save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 451 * 300 * 2 // 3)  # over the limit, under twice it
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded pixels over the budget"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning stays quiet too
        with pytest.raises(ImageDecodeError) as info:
            load_image(path, target_size=(224, 224))
    message = str(info.value)
    assert message.startswith(
        f"{path}: cannot decode (451x300 pixels (0.1 megapixels) is over the decode budget"
    )
    assert "downscale it" in message and "PIL.Image.MAX_IMAGE_PIXELS" in message


def test_large_jpeg_within_the_budget_once_drafted_is_decoded(tmp_path, chelsea_image, monkeypatch):
    path = tmp_path / "camera.jpg"
    chelsea_image.resize((3608, 2400)).save(path, quality=90)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3608 * 2400 * 2 // 3)  # the full size is over budget
    image = load_image(path, target_size=(256, 256))  # DCT-scaled to 1/4: well within it
    assert image.size == (902, 600)
    with pytest.raises(ImageDecodeError, match="over the decode budget"):
        load_image(path)  # the full image is what would be decoded here


@pytest.mark.parametrize("size", [(1, 20000), (20000, 1), (1, 5000), (2, 1000)])
def test_thin_image_is_refused_from_its_header_when_resized(tmp_path, size):
    path = tmp_path / f"thin_{size[0]}x{size[1]}.png"
    Image.new("L", size, 90).save(path)
    with deadline(5), pytest.raises(ImageDecodeError) as info:
        load_image(path, target_size=(256, 256))
    ratio = max(size) // min(size)
    assert str(info.value).startswith(
        f"{path}: cannot decode ({size[0]}x{size[1]} pixels, aspect ratio {ratio}:1 is over 100:1"
    )
    assert load_image(path).size == size  # not resized: nothing to budget


def test_moderately_thin_image_is_decoded(tmp_path):
    path = tmp_path / "banner.png"
    Image.new("RGB", (3000, 40), RED).save(path)
    assert load_image(path, target_size=(256, 256)).size == (3000, 40)


def test_reduce_before_compositing_matches_compositing_first(tmp_path, chelsea_image):
    rgba = chelsea_image.resize((1804, 1200)).convert("RGBA")
    alpha = np.full((1200, 1804), 255, np.uint8)
    alpha[:, :600] = 0  # a transparent left third: its hidden colors must not bleed into the edge
    rgba.putalpha(Image.fromarray(alpha))
    path = tmp_path / "alpha.png"
    rgba.save(path)
    reduced = pixels(load_image(path, target_size=(128, 128)))
    factor = 1804 // reduced.shape[1]
    expected = pixels(load_image(path).reduce(factor))
    assert reduced.shape == expected.shape and factor > 1
    assert np.abs(reduced - expected).max() <= 2


# Reduced decoding for speed: never below what the eval resize needs.


@pytest.fixture(scope="module")
def large_photo(tmp_path_factory, chelsea_image) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("large")
    big = chelsea_image.resize((451 * 8, 300 * 8), Image.Resampling.BILINEAR)  # 3608 x 2400
    paths = {"jpg": folder / "big.jpg", "png": folder / "big.png"}
    big.save(paths["jpg"], quality=90)
    big.save(paths["png"], compress_level=1)
    exif = Image.Exif()
    exif[0x0112] = 6
    paths["rotated"] = folder / "rotated.jpg"  # stored 4000 x 1000, displayed 1000 wide x 4000 high
    chelsea_image.resize((4000, 1000), Image.Resampling.BILINEAR).save(
        paths["rotated"], quality=90, exif=exif
    )
    return paths


@pytest.mark.parametrize("kind", ["jpg", "png"])
@pytest.mark.parametrize("target", [(256, 256), (64, 64), (256, 400), (400, 256)])
def test_reduced_decode_stays_above_target(large_photo, kind, target):
    image = load_image(large_photo[kind], target_size=target)
    assert image.mode == "RGB"
    assert image.width < 3608  # it did reduce
    # The eval resize scales by max(th / h, tw / w); the decoded image must still be at least that large.
    scale = max(target[0] / 2400, target[1] / 3608)
    assert image.height >= 2400 * scale and image.width >= 3608 * scale
    assert image.height >= target[0] and image.width >= target[1]
    assert abs(image.width / image.height - 3608 / 2400) < 0.01


def test_reduced_decode_respects_exif_rotation(large_photo):
    # Covering (100, 600) needs 600 x 2400 displayed. Drafting with the target in display orientation
    # against the stored pixels would halve the decode to 500 wide; the rotation-aware draft must not.
    image = load_image(large_photo["rotated"], target_size=(100, 600))
    assert image.width >= 600 and image.height >= 2400
    assert image.height > image.width


def test_small_images_are_never_reduced(tmp_path, chelsea_image):
    path = tmp_path / "small.jpg"
    chelsea_image.save(path)
    assert load_image(path, target_size=(256, 256)).size == (451, 300)
    assert load_image(path, target_size=(1000, 1000)).size == (451, 300)
