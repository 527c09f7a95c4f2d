"""Images in: a folder of class sub-folders → arrays and a spec; a grid of mistakes out.

`read_images(folder)` reads `folder/<class>/<image>` with Pillow (no
TensorFlow, so it works on every Keras backend) into an N×H×W×C array (uint8
for 8-bit images; 16-bit and floating-point grayscale images keep their
depth), integer labels and a `ProblemSpec` whose `class_names` are the
sub-folder names, so the model built from it keeps them. Bad input is
refused before anything trains: a folder without class sub-folders, a class
without images, unreadable files and decompression bombs (named), mixed image
sizes without `image_size=`, 8-bit images mixed with deeper ones.
"""

import dataclasses
from pathlib import Path

import numpy as np

from kerakit.checks import check_count, is_integer
from kerakit.errors import ConfigError, DataError

# Suffixes Pillow reads that people keep images in.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_MODES = {"auto": None, "grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
# Pillow modes of one channel deeper than 8 bits: 16- and 32-bit integers, 32-bit floats.
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclasses.dataclass
class ImageFolder:
    """What `read_images` returns.

    Attributes:
        x: images, an N×H×W×C array: uint8 (pixels 0–255) for 8-bit images,
            uint16 (0–65535) for 16-bit ones, float32 (as stored) for
            floating-point ones. Never rescaled.
        y: integer labels, indices into `class_names`.
        class_names: the class sub-folder names, sorted.
        paths: the file of each image, in the order of `x`.
        spec: a multiclass (or binary, for two classes) `ProblemSpec` with
            `class_names`; `build_model(spec, ...)` keeps it in the model.
        max_value: the largest possible pixel value (255, or 65535 for 16-bit
            images; None for floating-point ones), for
            `build_model(..., max_value=...)`.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list
    paths: list
    spec: object
    max_value: object = 255


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
            name order), a whole number >= 1. Defaults to all.

    16-bit images (PNG, TIFF) come back as uint16 and 32-bit float TIFFs as
    float32, grayscale, with their values as stored: no bit is dropped and
    nothing is rescaled (`max_value` says the range). Pillow gives such
    images one channel, so `color_mode` must be "auto" or "grayscale" for
    them, and a folder may not mix them with 8-bit images.

    Returns:
        An `ImageFolder` with `x` (N×H×W×C), `y`, `class_names`, `paths`,
        `spec` and `max_value`.

    Example:

    ```python
    images = kk.read_images("photos", image_size=(64, 64))
    model = kk.build_model(images.spec, input_shape=images.x.shape[1:], body="cnn",
                           max_value=255)
    ```
    """
    from PIL import Image

    from kerakit.spec import ProblemSpec

    if color_mode not in _MODES:
        raise DataError(
            f"`color_mode` must be one of {', '.join(map(repr, _MODES))}. "
            f"Received: color_mode={color_mode!r}"
        )
    if image_size is not None:
        image_size = tuple(image_size)
        if len(image_size) != 2 or any(not is_integer(s) or s < 1 for s in image_size):
            raise DataError(
                f"`image_size` must be (height, width), two positive integers. "
                f"Received: image_size={image_size!r}"
            )
    max_per_class = check_count("max_per_class", max_per_class, allow_none=True)
    classes = _class_folders(folder)
    images, labels, paths, unreadable = [], [], [], []
    for label, class_folder in enumerate(classes):
        for path in _image_files(class_folder)[:max_per_class]:
            image = _open(path, unreadable)
            if image is not None:
                images.append(image)
                labels.append(label)
                paths.append(str(path))
    if unreadable:
        raise DataError(
            f"{len(unreadable)} file(s) could not be read as images: "
            f"{'; '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}. Remove or "
            f"re-save them."
        )
    deep = _check_depth(images, paths, color_mode)
    if deep:
        mode = "F" if any(i.mode == "F" for i in images) else "I"
    else:
        mode = _MODES[color_mode] or ("L" if all(i.mode in ("L", "1") for i in images) else "RGB")
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
        array = np.asarray(image)
        arrays.append(array[..., None] if array.ndim == 2 else array)
    x, max_value = _stack(arrays, mode)
    names = [p.name for p in classes]
    task = "binary" if len(names) == 2 else "multiclass"
    spec = ProblemSpec(task=task, num_classes=len(names), class_names=names) \
        if task == "multiclass" else ProblemSpec(task=task, class_names=names)
    return ImageFolder(x, np.asarray(labels, dtype=np.int64), names, paths, spec, max_value)


def _open(path, unreadable):
    """The loaded image, or None after noting why it could not be read in `unreadable`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Image.DecompressionBombError:
        raise DataError(
            f"{str(path)!r} is too large to open safely: more than twice Pillow's limit of "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?). Remove it, or if it is "
            f"a real image you trust, raise PIL.Image.MAX_IMAGE_PIXELS first."
        ) from None
    except (OSError, UnidentifiedImageError, ValueError) as error:
        unreadable.append(f"{path} ({type(error).__name__})")
        return None


def _check_depth(images, paths, color_mode):
    """True when the images are deeper than 8 bits; refuses a mix and a colour mode they lack."""
    deep = [i.mode in _DEEP_MODES for i in images]
    if not any(deep):
        return False
    if not all(deep):
        shallow, other = deep.index(False), deep.index(True)
        raise DataError(
            f"The images mix 8-bit files (e.g. {paths[shallow]}) with 16-bit or floating-point "
            f"ones (e.g. {paths[other]}); read together, one kind would lose its scale. Convert "
            f"them to one bit depth first."
        )
    if color_mode not in ("auto", "grayscale"):
        raise ConfigError(
            f"The images are 16-bit or floating-point grayscale (e.g. {paths[0]}); read as "
            f"{color_mode!r} they would be cut to 8 bits. Pass color_mode='grayscale' or 'auto'."
        )
    return True


def _stack(arrays, mode):
    """(x, max_value): 8-bit images as uint8, 16-bit as uint16, others as float32, unscaled."""
    if mode not in ("I", "F"):
        return np.stack(arrays).astype(np.uint8), 255
    x = np.stack(arrays)
    if mode == "I" and x.min() >= 0 and x.max() <= 65535:
        return x.astype(np.uint16), 65535
    return x.astype(np.float32), None


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
