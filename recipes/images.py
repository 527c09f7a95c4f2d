"""Images: classify a folder of images in class sub-folders with the `cnn` body.

Give it any folder laid out as `FOLDER/<class>/<image>` (`--path FOLDER`);
without one it draws a small data set of shapes (circles, squares,
triangles in random sizes, places and colours on a noisy background) as PNG
files and reads those. `kk.read_images` loads the folder with Pillow (mixed
sizes need `--image-size`) and keeps the sub-folder names as the class names
in the model's spec. The model rescales pixels (0–255) itself and augments
with random flips and small rotations in training only, so the saved model
takes raw images. The run directory holds a grid of the misclassified test
images with their true and predicted classes.
"""

import dataclasses
from pathlib import Path
from typing import Literal


@dataclasses.dataclass
class Config:
    path: Path | None = None  # a folder of class sub-folders; None draws shapes as PNGs
    image_size: int | None = None  # resize every image to this many pixels square
    per_class: int = 150  # images drawn per shape when no path is given
    epochs: int = 60  # upper bound; early stopping usually ends sooner
    batch_size: int = 32  # examples per step
    filters: tuple[int, ...] = (32, 64)  # convolution filters of each block
    dropout: float = 0.25  # dropout rate after each block
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"  # random flips in training
    rotation: float = 0.05  # random rotation in training, as a fraction of a full turn
    learning_rate: float = 1e-3  # Adam's step size
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0  # seeds the drawing, the split, the weights and the shuffles
    smoke: bool = False  # tiny images and 2 epochs: checks the recipe runs, in seconds


SHAPES = ("circle", "square", "triangle")


def draw_shapes(folder, per_class=150, size=32, seed=0):
    """Writes `per_class` PNG images of each shape into `folder/<shape>/`; returns the folder."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    for shape in SHAPES:
        (folder / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            image = Image.fromarray(noise, "RGB")
            draw = ImageDraw.Draw(image)
            radius = rng.uniform(0.2, 0.4) * size
            cx, cy = rng.uniform(radius, size - radius, 2)
            colour = tuple(int(c) for c in rng.integers(120, 256, 3))
            if shape == "circle":
                draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
            elif shape == "square":
                draw.rectangle([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
            else:
                draw.polygon([(cx, cy - radius), (cx - radius, cy + radius),
                              (cx + radius, cy + radius)], fill=colour)
            image.save(folder / shape / f"{i:04d}.png")
    return folder


def data(config):
    """Reads the folder (or draws the shapes first) and splits it, stratified by class."""
    import tempfile

    import kerakit as kk
    from kerakit.recipes import split_data

    folder = config.path
    if folder is None:
        size, per_class = (16, 12) if config.smoke else (32, config.per_class)
        folder = draw_shapes(Path(tempfile.mkdtemp(prefix="kerakit-shapes-")), per_class, size,
                             config.seed)
    size = None if config.image_size is None else (config.image_size, config.image_size)
    images = kk.read_images(folder, image_size=size)
    splits = split_data(images.x, images.y, seed=config.seed,
                        limit=60 if config.smoke and config.path is not None else None)
    return {**splits, "spec": images.spec, "class_names": images.class_names,
            "source": str(folder)}


def run(config, data, run):
    """Builds the CNN from the spec, trains with early stopping, reports on the test split."""
    import kerakit as kk
    from kerakit.data.images import misclassified_grid

    spec = data["spec"]
    model = kk.build_model(spec, input_shape=data["x_train"].shape[1:], body="cnn", max_value=255,
                           filters=(8,) if config.smoke else config.filters,
                           dropout=config.dropout, flip=config.flip, rotation=config.rotation,
                           learning_rate=config.learning_rate, seed=config.seed)
    history = kk.fit(model, data["x_train"], data["y_train"],
                     validation_data=(data["x_val"], data["y_val"]),
                     epochs=2 if config.smoke else config.epochs, batch_size=config.batch_size,
                     callbacks=kk.default_callbacks(spec, patience=config.patience),
                     seed=config.seed)
    run.save_history(history)
    run.save_model(model)
    scores = kk.predict(model, data["x_test"])
    predicted = scores.argmax(axis=1) if scores.shape[1] > 1 else (scores[:, 0] >= 0.5).astype(int)
    run.save_figure("misclassified", misclassified_grid(
        data["x_test"], data["y_test"], predicted, class_names=data["class_names"]))
    return kk.evaluate(model, data["x_test"], data["y_test"])


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
