import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def messy_folder(tmp_path_factory):
    """Three classes of real photos in awkward formats: nested folders, RGBA, 16-bit, CMYK, grayscale,
    a corrupt file and a non-image."""
    from skimage import data

    root = tmp_path_factory.mktemp("messy")
    photos = {"cat": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket()}
    for label, array in photos.items():
        folder = root / label / "nested" if label == "cat" else root / label
        folder.mkdir(parents=True)
        image = Image.fromarray(array)
        for i in range(4):
            crop = image.crop((i * 10, i * 5, image.width - i * 7, image.height - i * 9))
            crop.save(folder / f"{i}.jpg")
        crop.convert("RGBA").save(folder / "rgba.png")
        Image.fromarray(np.asarray(crop.convert("L"), dtype=np.uint16) * 257).save(folder / "gray16.png")
        crop.convert("CMYK").save(folder / "cmyk.jpg")
        crop.convert("L").save(folder / "gray.bmp")
    (root / "coffee" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "rocket" / "notes.txt").write_text("not an image")
    return root
