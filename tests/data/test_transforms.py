from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from skimage import data

from effnet.data import EvalTransform, TrainTransform, transforms_for
from effnet.preprocessing import LITE_MEAN, LITE_STD, Preprocessing

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return data.chelsea()  # 300 x 451 x 3


@pytest.fixture(scope="module")
def chelsea_path(tmp_path_factory, chelsea):
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    Image.fromarray(chelsea).save(path)
    return path


def normalize(image: Image.Image, pre: Preprocessing) -> np.ndarray:
    x = np.asarray(image).astype(np.float32) / np.float32(255)
    x = (x - np.array(pre.mean, np.float32)) / np.array(pre.std, np.float32)
    return x.transpose(2, 0, 1)


def hand_eval(photo: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """The eval recipe written out with Pillow + numpy: cover-resize, center crop, normalize."""
    image = Image.fromarray(photo)
    (rh, rw), (ch, cw) = pre.resize_size, pre.input_size
    scale = max(rh / image.height, rw / image.width)
    size = (round(image.width * scale), round(image.height * scale))
    resized = image.resize(size, FILTERS[pre.interpolation])
    assert resized.height >= rh and resized.width >= rw
    top, left = round((resized.height - ch) / 2), round((resized.width - cw) / 2)
    return normalize(resized.crop((left, top, left + cw, top + ch)), pre)


@pytest.mark.parametrize(
    "pre",
    [
        Preprocessing(),  # 224, crop 0.875 -> resize 256, ImageNet mean/std
        Preprocessing(input_size=(224, 224), mean=LITE_MEAN, std=LITE_STD, crop_pct=224 / 256),
        Preprocessing(input_size=(240, 320), crop_pct=0.9, interpolation="bilinear"),
        Preprocessing(input_size=(320, 192), crop_pct=1.0),
        Preprocessing(input_size=(300, 300), crop_pct=0.95),  # upsamples: resize 315 > 300 rows
    ],
    ids=["default", "lite", "wide", "tall", "upsample"],
)
def test_eval_matches_hand_computation(chelsea, chelsea_path, pre):
    out = EvalTransform(pre)(chelsea_path)
    assert out.shape == (3, *pre.input_size)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(out, hand_eval(chelsea, pre), rtol=0, atol=1e-6)


def test_eval_accepts_path_pil_array_and_bytes_alike(chelsea, chelsea_path):
    transform = EvalTransform(Preprocessing())
    expected = transform(chelsea_path)
    for source in (str(chelsea_path), Image.fromarray(chelsea), chelsea, chelsea_path.read_bytes()):
        np.testing.assert_array_equal(transform(source), expected)


def test_eval_composites_on_the_preprocessing_background():
    transparent = np.zeros((50, 60, 4), np.uint8)
    pre = Preprocessing(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), background=(0, 0, 0))
    np.testing.assert_allclose(EvalTransform(pre)(transparent), -1.0)  # black: (0 - 0.5) / 0.5
    white = Preprocessing(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    np.testing.assert_allclose(EvalTransform(white)(transparent), 1.0)


def test_eval_on_large_jpeg_is_close_to_full_decode(tmp_path, chelsea):
    big = Image.fromarray(chelsea).resize((451 * 6, 300 * 6), Image.Resampling.BILINEAR)
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    pre = Preprocessing(mean=(0, 0, 0), std=(1 / 255, 1 / 255, 1 / 255))  # output in 0..255 levels
    fast = EvalTransform(pre)(path)  # decoded with JPEG DCT scaling
    with Image.open(path) as image:
        full = hand_eval(np.asarray(image.convert("RGB")), pre)
    difference = np.abs(fast - full)
    assert difference.mean() < 1.0 and difference.max() < 8


def test_batch_stacks(chelsea, chelsea_path):
    transform = EvalTransform(Preprocessing(input_size=(96, 128)))
    batch = transform.batch([chelsea_path, chelsea, Image.fromarray(chelsea[:, ::-1])])
    assert batch.shape == (3, 3, 96, 128)
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], transform(chelsea_path))
    with pytest.raises(ValueError, match="no images"):
        transform.batch([])


def test_repr_shows_settings():
    text = repr(EvalTransform(Preprocessing(input_size=(240, 320), interpolation="bilinear")))
    for part in ("input_size=(240, 320)", "resize_size=(", "'bilinear'", "mean=(0.485", "std=(0.229"):
        assert part in text


def test_transforms_for_preprocessing_or_model():
    pre = Preprocessing(input_size=(128, 128))
    assert transforms_for(pre).preprocessing is pre
    model = SimpleNamespace(preprocessing=pre)
    assert transforms_for(model).preprocessing is pre
    with pytest.raises(TypeError, match="got str"):
        transforms_for("efficientnet_lite0")
    with pytest.raises(TypeError, match=r"whose \.preprocessing is a dict"):
        transforms_for(SimpleNamespace(preprocessing={"input_size": 224}))


# TrainTransform


def test_train_is_reproducible_with_a_seed(chelsea):
    pre = Preprocessing(input_size=(96, 96))
    options = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3}
    a = TrainTransform(pre, seed=7, **options)
    b = TrainTransform(pre, seed=7, **options)
    outputs_a = [a(chelsea) for _ in range(4)]
    outputs_b = [b(chelsea) for _ in range(4)]
    for x, y in zip(outputs_a, outputs_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(outputs_a[0], outputs_a[1])  # draws advance between calls
    other = TrainTransform(pre, seed=8, **options)(chelsea)
    assert not np.array_equal(other, outputs_a[0])
    assert outputs_a[0].shape == (3, 96, 96) and outputs_a[0].dtype == np.float32


def test_train_accepts_a_generator(chelsea):
    pre = Preprocessing(input_size=(64, 80))
    from_generator = TrainTransform(pre, seed=np.random.default_rng(3))(chelsea)
    from_seed = TrainTransform(pre, seed=3)(chelsea)
    np.testing.assert_array_equal(from_generator, from_seed)
    assert from_seed.shape == (3, 64, 80)


def test_train_with_augmentation_off_equals_eval(chelsea):
    pre = Preprocessing(input_size=(128, 160), crop_pct=0.9)
    plain = TrainTransform(pre, seed=0, random_crop=False, flip=False)
    np.testing.assert_array_equal(plain(chelsea), EvalTransform(pre)(chelsea))


def test_train_flip(chelsea):
    pre = Preprocessing(input_size=(128, 128))
    flipped = TrainTransform(pre, seed=0, random_crop=False, flip_p=1.0)(chelsea)
    np.testing.assert_array_equal(flipped, EvalTransform(pre)(chelsea)[:, :, ::-1])


def test_train_random_crop_falls_back_to_center_crop(chelsea):
    # A full-area square cannot fit a 451 x 300 image, so all 10 draws fail: the central 300 x 300 is used.
    # (160 is large enough that load_image does not reduce the 451 x 300 decode.)
    pre = Preprocessing(input_size=(160, 160))
    out = TrainTransform(pre, seed=0, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)(chelsea)
    left = (451 - 300) // 2
    box = (left, 0, left + 300, 300)
    expected = Image.fromarray(chelsea).resize((160, 160), Image.Resampling.BICUBIC, box=box)
    np.testing.assert_allclose(out, normalize(expected, pre), rtol=0, atol=1e-6)


def test_train_jitter_changes_colors_only_when_enabled(chelsea):
    pre = Preprocessing(input_size=(64, 64))
    base = TrainTransform(pre, seed=1, random_crop=False, flip=False)(chelsea)
    jittered = TrainTransform(pre, seed=1, random_crop=False, flip=False, brightness=0.5)(chelsea)
    assert not np.allclose(base, jittered)
    assert np.isfinite(jittered).all()


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"scale": (0.0, 1.0)}, "scale"),
        ({"scale": (0.5, 0.2)}, "scale"),
        ({"ratio": (2.0, 1.0)}, "ratio"),
        ({"flip_p": 1.5}, "flip_p"),
        ({"contrast": -0.1}, "contrast"),
    ],
)
def test_train_rejects_bad_arguments(options, argument):
    with pytest.raises(ValueError, match=argument):
        TrainTransform(Preprocessing(), **options)


def test_train_repr():
    text = repr(TrainTransform(Preprocessing(), seed=0, saturation=0.2))
    assert "random_crop(scale=(0.08, 1.0)" in text and "saturation=0.2" in text


@pytest.mark.parametrize("size", [(40, 3000), (3000, 40), (3, 250)])
def test_eval_on_a_thin_image_allocates_about_a_crop_not_the_cover_resize(chelsea, monkeypatch, size):
    # Covering 256 x 256 with a 40 x 3000 banner is a 256 x 19200 resize before the crop; the transform
    # resizes only the box under the crop. Same pixels as the hand-written recipe, to within rounding.
    thin = np.asarray(Image.fromarray(chelsea).resize(size, Image.Resampling.BILINEAR))
    pre = Preprocessing(input_size=(224, 224), interpolation="bilinear")
    resize = Image.Image.resize
    sizes = []

    def recording(self, new_size, *args, **kwargs):
        sizes.append(new_size)
        return resize(self, new_size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording)
    out = EvalTransform(pre)(thin)
    monkeypatch.setattr(Image.Image, "resize", resize)
    assert max(w * h for w, h in sizes) <= 16 * 224 * 224
    assert np.abs(out - hand_eval(thin, pre)).max() < 0.05  # 0.05 ~ 3/255 in normalized units


def test_train_center_crop_path_is_bounded_too(monkeypatch):
    thin = np.full((20, 1900, 3), 120, np.uint8)
    pre = Preprocessing(input_size=(224, 224))
    resize = Image.Image.resize
    sizes = []
    monkeypatch.setattr(
        Image.Image, "resize", lambda self, s, *a, **k: sizes.append(s) or resize(self, s, *a, **k)
    )
    out = TrainTransform(pre, random_crop=False, flip=False)(thin)
    assert out.shape == (3, 224, 224)
    assert max(w * h for w, h in sizes) <= 16 * 224 * 224
