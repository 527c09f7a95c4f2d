"""`kk.read_images`, image arrays through fit, the misclassified grid and the image recipes."""

import json
from pathlib import Path

import numpy as np
import pytest

import kerakit as kk
from kerakit.errors import DataError, KerakitError

pytestmark = pytest.mark.backends


def _write(folder, classes=("cat", "dog"), per_class=3, size=(6, 5), mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            channels = {"RGB": (3,), "L": ()}[mode]
            pixels = rng.integers(0, 256, (*size, *channels), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(folder / name / f"{i}.png")
    return folder


def test_read_images_keeps_class_names_in_the_spec(tmp_path):
    _write(tmp_path, classes=("ant", "bee", "cow"), per_class=2)
    images = kk.read_images(tmp_path)
    assert images.x.shape == (6, 6, 5, 3) and images.x.dtype == np.uint8
    assert images.class_names == ["ant", "bee", "cow"]
    assert images.y.tolist() == [0, 0, 1, 1, 2, 2]
    assert images.spec.task == "multiclass" and list(images.spec.class_names) == images.class_names
    assert images.paths[0].endswith("0.png")


def test_read_images_grayscale_and_resize(tmp_path):
    _write(tmp_path / "a", mode="L")
    _write(tmp_path / "a", classes=("fox",), size=(9, 9), mode="L")
    images = kk.read_images(tmp_path / "a", image_size=(4, 4))
    assert images.x.shape == (9, 4, 4, 1)
    assert images.spec.task == "multiclass" and images.spec.num_classes == 3


def test_read_images_refuses_mixed_sizes_without_image_size(tmp_path):
    _write(tmp_path)
    _write(tmp_path, classes=("dog",), size=(7, 7), per_class=1)  # 0.png of dog is now 7×7
    with pytest.raises(DataError, match=r"2 different sizes.*image_size=\(height, width\)"):
        kk.read_images(tmp_path)


def test_read_images_names_unreadable_files(tmp_path):
    _write(tmp_path)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"1 file\(s\) could not be read.*broken\.png"):
        kk.read_images(tmp_path)


def test_read_images_refuses_a_folder_without_classes(tmp_path):
    with pytest.raises(DataError, match="one sub-folder per class.*found none"):
        kk.read_images(tmp_path)
    _write(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError, match="found only 'only'"):
        kk.read_images(tmp_path / "one")
    (tmp_path / "two" / "a").mkdir(parents=True)
    (tmp_path / "two" / "b").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        kk.read_images(tmp_path / "two")
    with pytest.raises(DataError, match="is not a folder"):
        kk.read_images(tmp_path / "missing")


def _write_deep(folder, values, dtype, suffix):
    from PIL import Image

    for name, value in zip(("dark", "light"), values, strict=True):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.fromarray(np.full((4, 5), value + i, dtype=dtype)).save(folder / name / f"{i}{suffix}")


def test_read_images_keeps_sixteen_bits(tmp_path):
    # 1000 and 1100 are both above 255: clipped to 8 bits the two classes were identical.
    _write_deep(tmp_path, (1000, 1100), np.uint16, ".png")
    images = kk.read_images(tmp_path)
    assert images.x.dtype == np.uint16 and images.x.shape == (4, 4, 5, 1)
    assert images.x[:, 0, 0, 0].tolist() == [1000, 1001, 1100, 1101]
    assert images.max_value == 65535
    with pytest.raises(KerakitError, match="cut to 8 bits"):
        kk.read_images(tmp_path, color_mode="rgb")


def test_read_images_keeps_float_tiffs(tmp_path):
    _write_deep(tmp_path, (0.25, 0.5), np.float32, ".tif")
    images = kk.read_images(tmp_path, image_size=(2, 3))
    assert images.x.dtype == np.float32 and images.x.shape == (4, 2, 3, 1)
    assert np.allclose(images.x[:, 0, 0, 0], [0.25, 1.25, 0.5, 1.5])
    assert images.max_value is None


def test_read_images_refuses_eight_bit_mixed_with_sixteen(tmp_path):
    from PIL import Image

    _write_deep(tmp_path, (1000, 1100), np.uint16, ".png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "dark" / "8bit.png")
    with pytest.raises(DataError, match="mix 8-bit files"):
        kk.read_images(tmp_path)


@pytest.mark.parametrize("count", [-1, 0, 1.5, "2"])
def test_read_images_refuses_a_max_per_class_that_is_not_a_count(tmp_path, count):
    _write(tmp_path)
    with pytest.raises(KerakitError, match="`max_per_class` must be"):
        kk.read_images(tmp_path, max_per_class=count)
    assert len(kk.read_images(tmp_path, max_per_class=2).y) == 4


def test_read_images_refuses_a_decompression_bomb_by_name(tmp_path, monkeypatch):
    from PIL import Image

    _write(tmp_path, size=(20, 20))
    # Pillow refuses more than twice MAX_IMAGE_PIXELS: a 20x20 image stands in for 40,000 x 40,000.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match="too large to open safely") as info:
        kk.read_images(tmp_path)
    assert "0.png" in str(info.value) and "MAX_IMAGE_PIXELS" in str(info.value)


def test_fit_refuses_images_of_another_size_before_training():
    spec = kk.ProblemSpec(task="binary")
    model = kk.build_model(spec, input_shape=(8, 8), body="cnn", filters=(4,), units=0)
    with pytest.raises(DataError, match="expects"):
        kk.fit(model, np.zeros((4, 9, 9), "uint8"), np.array([0, 1, 0, 1]), epochs=1)


def test_misclassified_grid_titles_true_and_predicted():
    from matplotlib.figure import Figure

    from kerakit.data.images import misclassified_grid

    x = np.arange(4 * 3 * 3, dtype=float).reshape(4, 3, 3)
    figure = misclassified_grid(x, [0, 1, 1, 0], [0, 0, 1, 1], class_names=["no", "yes"])
    assert isinstance(figure, Figure)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["yes → no", "no → yes"]
    empty = misclassified_grid(x, [0, 1, 1, 0], [0, 1, 1, 0])
    assert "No misclassified" in empty.axes[0].get_title()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits-cnn", "images", "text"])
def test_new_recipes_smoke_run_and_save_their_figures(name, tmp_path):
    from kerakit import backend, recipes

    if name == "text" and backend.name() != "tensorflow":
        pytest.skip("text models need TensorFlow (TextVectorization)")
    module = recipes.load(name)
    result = recipes.execute(module, recipes.make_config(module, smoke=True), runs_dir=tmp_path,
                             quiet=True)
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    assert manifest["status"] == "completed" and "accuracy" in result["metrics"]
    expected = {"model.keras", "history.csv", "confusion_matrix.png"}
    if name != "text":
        expected.add("misclassified.png")
    assert expected <= set(manifest["files"])


@pytest.mark.slow
def test_images_recipe_runs_on_a_users_folder(tmp_path):
    from kerakit import recipes

    _write(tmp_path / "data", classes=("a", "b", "c"), per_class=8, size=(8, 8))
    module = recipes.load("images")
    config = recipes.make_config(module, smoke=True, path=tmp_path / "data")
    result = recipes.execute(module, config, runs_dir=tmp_path / "runs", quiet=True)
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    assert manifest["data"]["class_names"] == ["a", "b", "c"]
    assert manifest["spec"]["class_names"] == ["a", "b", "c"]


@pytest.mark.slow
def test_text_recipe_runs_on_a_users_csv(tmp_path):
    import pandas as pd

    from kerakit import backend, recipes

    if backend.name() != "tensorflow":
        pytest.skip("text models need TensorFlow (TextVectorization)")
    texts = [f"{'great lovely film' if i % 2 else 'dull awful plot'} number {i}" for i in range(40)]
    pd.DataFrame({"review": texts, "stars": ["good" if i % 2 else "bad" for i in range(40)]}) \
        .to_csv(tmp_path / "reviews.csv", index=False)
    module = recipes.load("text")
    config = recipes.make_config(module, smoke=True, path=tmp_path / "reviews.csv",
                                 text_column="review", label_column="stars")
    result = recipes.execute(module, config, runs_dir=tmp_path / "runs", quiet=True)
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    assert manifest["spec"]["task"] == "binary" and manifest["spec"]["class_names"] == ["bad", "good"]
    with pytest.raises(DataError, match=r"no column\(s\) \['text', 'label'\]"):
        recipes.execute(module, recipes.make_config(module, smoke=True,
                                                    path=tmp_path / "reviews.csv"),
                        runs_dir=tmp_path / "runs", quiet=True)
