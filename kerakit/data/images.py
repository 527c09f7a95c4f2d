"""Images in: a folder of class sub-folders → arrays and a spec; a grid of mistakes out.

`read_images(folder)` reads `folder/<class>/<image>` with Pillow (no
TensorFlow, so it works on every Keras backend) into an N×H×W×C uint8 array,
integer labels and a `ProblemSpec` whose `class_names` are the sub-folder
names, so the model built from it keeps them. Bad input is refused before
anything trains: a folder without class sub-folders, a class without images,
unreadable files (named), mixed image sizes without `image_size=`.
"""

import dataclasses
from pathlib import Path

import numpy as np

from kerakit.errors import DataError

# Suffixes Pillow reads that people keep images in.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_MODES = {"auto": None, "grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


@dataclasses.dataclass
class ImageFolder:
    """What `read_images` returns.

    Attributes:
        x: images, an N×H×W×C uint8 array (pixels 0–255).
        y: integer labels, indices into `class_names`.
        class_names: the class sub-folder names, sorted.
        paths: the file of each image, in the order of `x`.
        spec: a multiclass (or binary, for two classes) `ProblemSpec` with
            `class_names`; `build_model(spec, ...)` keeps it in the model.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list
    paths: list
    spec: object


def _class_folders(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"read_images needs a folder with one sub-folder per class; {str(folder)!r} is not "
            f"a folder."
        )
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"only {classes[0].name!r}" if classes else "none"
        raise DataError(
            f"{str(folder)!r} must hold one sub-folder per class (at least two), e.g. "
            f"{folder}/cat/1.png and {folder}/dog/1.png; found {found}. Put the images of each "
            f"class in a sub-folder named after it."
        )
    return classes


def _image_files(class_folder):
    files = sorted(p for p in class_folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"Class folder {str(class_folder)!r} holds no images (looked for "
            f"{', '.join(IMAGE_SUFFIXES)}). Add images or remove the folder."
        )
    return files


def read_images(folder, *, image_size=None, color_mode="auto", max_per_class=None):
    """Reads a folder of images in class sub-folders into arrays and a spec.

    Args:
        folder: a folder with one sub-folder per class (`folder/cat/1.png`).
        image_size: `(height, width)` to resize every image to. Defaults to
            None: the images must all have one size (refused otherwise).
        color_mode: "grayscale", "rgb", "rgba", or "auto" (grayscale when
            every image is, else RGB). Defaults to "auto".
        max_per_class: read at most this many images per class (the first in
            name order). Defaults to all.

    Returns:
        An `ImageFolder` with `x` (N×H×W×C uint8), `y`, `class_names`,
        `paths` and `spec`.

    Example:

    ```python
    images = kk.read_images("photos", image_size=(64, 64))
    model = kk.build_model(images.spec, input_shape=images.x.shape[1:], body="cnn",
                           max_value=255)
    ```
    """
    from PIL import Image, UnidentifiedImageError

    from kerakit.spec import ProblemSpec

    if color_mode not in _MODES:
        raise DataError(
            f"`color_mode` must be one of {', '.join(map(repr, _MODES))}. "
            f"Received: color_mode={color_mode!r}"
        )
    if image_size is not None:
        image_size = tuple(image_size)
        if len(image_size) != 2 or any(not isinstance(s, int) or s < 1 for s in image_size):
            raise DataError(
                f"`image_size` must be (height, width), two positive integers. "
                f"Received: image_size={image_size!r}"
            )
    classes = _class_folders(folder)
    images, labels, paths, unreadable = [], [], [], []
    for label, class_folder in enumerate(classes):
        files = _image_files(class_folder)
        for path in files[:max_per_class]:
            try:
                with Image.open(path) as image:
                    image.load()
                    images.append(image.copy())
            except (OSError, UnidentifiedImageError, ValueError) as error:
                unreadable.append(f"{path} ({type(error).__name__})")
                continue
            labels.append(label)
            paths.append(str(path))
    if unreadable:
        raise DataError(
            f"{len(unreadable)} file(s) could not be read as images: "
            f"{'; '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}. Remove or "
            f"re-save them."
        )
    mode = _MODES[color_mode] or ("L" if all(i.mode in ("L", "1", "I", "I;16") for i in images)
                                  else "RGB")
    if image_size is None:
        sizes = {}
        for image, path in zip(images, paths, strict=True):
            sizes.setdefault(image.size[::-1], path)
        if len(sizes) > 1:
            shown = ", ".join(f"{h}×{w} ({p})" for (h, w), p in list(sizes.items())[:3])
            raise DataError(
                f"The images have {len(sizes)} different sizes (height × width), e.g. {shown}. "
                f"Pass image_size=(height, width) to resize them all to one size."
            )
    arrays = []
    for image in images:
        image = image.convert(mode)
        if image_size is not None and image.size != image_size[::-1]:
            image = image.resize(image_size[::-1], Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[..., None] if array.ndim == 2 else array)
    names = [p.name for p in classes]
    task = "binary" if len(names) == 2 else "multiclass"
    spec = ProblemSpec(task=task, num_classes=len(names), class_names=names) \
        if task == "multiclass" else ProblemSpec(task=task, class_names=names)
    return ImageFolder(np.stack(arrays), np.asarray(labels, dtype=np.int64), names, paths, spec)


def misclassified_grid(images, y_true, y_pred, *, class_names=None, max_images=25, columns=5):
    """A grid of misclassified images titled "true → predicted" (a matplotlib Figure).

    Args:
        images: N×H×W or N×H×W×C images (any numeric range; each is scaled
            to its own min and max for display).
        y_true, y_pred: class indices.
        class_names: names to show instead of indices. Defaults to None.
        max_images: how many mistakes to show at most (the first ones).
            Defaults to 25.
        columns: images per row. Defaults to 5.

    Example:

    ```python
    figure = misclassified_grid(x_test, y_test, model.predict(x_test).argmax(axis=1))
    figure.savefig("misclassified.png")
    ```
    """
    from matplotlib.figure import Figure

    images = np.asarray(images)
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    wrong = np.flatnonzero(y_true != y_pred)[:max_images]
    name = (lambda i: str(class_names[int(i)])) if class_names is not None else (lambda i: str(int(i)))
    rows = max(1, -(-len(wrong) // columns))
    figure = Figure(figsize=(2 * columns, 2.2 * rows))
    if not len(wrong):
        axis = figure.add_subplot(1, 1, 1)
        axis.axis("off")
        axis.set_title(f"No misclassified examples among {len(y_true)}")
        return figure
    for slot, index in enumerate(wrong):
        axis = figure.add_subplot(rows, columns, slot + 1)
        image = images[index].astype("float32")
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else image * 0
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        axis.set_title(f"{name(y_true[index])} → {name(y_pred[index])}", fontsize=9)
        axis.axis("off")
    figure.suptitle(f"Misclassified: {len(np.flatnonzero(y_true != y_pred))} of {len(y_true)} "
                    f"(true → predicted)")
    return figure
