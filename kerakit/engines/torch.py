"""The `torch` engine: device-resident tensors and Keras's own `train_step` per batch.

Keras's `fit` on PyTorch converts every batch from NumPy on the host and
cannot run several steps per call (`steps_per_execution` must be 1 there).
This engine moves the arrays to the model's device once, shuffles on the
device with a seeded generator, and calls the model's `train_step` (its
loss, optimizer and metrics, `torch.compile`d when the model was compiled
with `jit_compile=True`) on slices of those tensors. Validation runs the
same way with `test_step` under `torch.no_grad()`. Callbacks run at epoch
boundaries, as with the `jax` engine (`kerakit.engines.loop`).
"""

import math

import numpy as np

from kerakit.backend import is_dataset
from kerakit.engines import keras_fit
from kerakit.engines.loop import build_for_training, run_epochs

VALIDATION_BATCH_SIZE = 1024


def _device(model):
    return model.trainable_variables[0].value.device


def _to_device(parts, device):
    import torch

    return tuple(torch.as_tensor(np.ascontiguousarray(p), device=device) for p in parts)


def _slice(parts, rows):
    return tuple(p[rows] for p in parts)


def fit(model, data, options):
    import torch

    if isinstance(data.x, dict) or is_dataset(data.validation) or not model.trainable_variables:
        return keras_fit.fit(model, data, options)

    def parts(x, y, w=None):
        return (x, y) if w is None else (x, y, w)

    build_for_training(model, parts(data.x[:2], data.y[:2],
                                    None if data.sample_weight is None else data.sample_weight[:2]))
    keras_fit.set_steps_per_execution(model, 1)
    model.make_train_function()
    device = _device(model)
    train = _to_device(parts(data.x, data.y, data.sample_weight), device)
    n, batch_size = data.rows, options.batch_size
    generator = torch.Generator(device=device)
    generator.manual_seed(options.seed if options.seed is not None else int(np.random.randint(2**31 - 1)))

    def train_epoch(epoch):
        model.reset_metrics()
        model.train()
        order = (torch.randperm(n, generator=generator, device=device) if options.shuffle
                 else torch.arange(n, device=device))
        for start in range(0, n, batch_size):
            model.train_function([_slice(train, order[start:start + batch_size])])
            if model.stop_training:
                break
        model.eval()
        return model.get_metrics_result()

    validate = None
    if data.validation is not None:
        validation = _to_device(parts(*data.validation), device)
        rows = len(data.validation[1])
        val_batch = max(batch_size, VALIDATION_BATCH_SIZE)
        model.make_test_function()

        def validate():
            model.reset_metrics()
            for start in range(0, rows, val_batch):
                model.test_function([_slice(validation, slice(start, start + val_batch))])
            return model.get_metrics_result()

    return run_epochs(model, options, math.ceil(n / batch_size), train_epoch, validate)
