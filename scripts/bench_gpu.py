"""Training throughput on every installed Keras backend: kerakit `fit` vs textbook `fit` vs raw JAX.

    python scripts/bench_gpu.py                       # the H200 workload (2M x 100, MLP 1024x3)
    python scripts/bench_gpu.py --rows 200000 --width 256   # a CPU-sized run
    python scripts/bench_gpu.py --backends jax --bf16        # add mixed_bfloat16
    python scripts/bench_gpu.py --workload raw-table --backends jax   # 1M raw rows, 3 text columns
    python scripts/bench_gpu.py --workload raw-table --table-rows 50000 --backends jax,tensorflow

Each backend runs in its own process (Keras fixes the backend at import).
Per backend, on the same generated table (labels from a random "teacher"
MLP, so the task is learnable; 10 % held out) and the same model:

- `textbook`: `model.fit(numpy)` with Keras's defaults;
- `textbook_spe16`: the same with `steps_per_execution=16` (not on torch);
- `kerakit`: `kerakit.fit` (the backend's engine: jitted on-device epochs on
  JAX, device-resident tensors on PyTorch, tf.data on TensorFlow);
- `kerakit_bf16`: the same under `mixed_bfloat16` (`--bf16`);
- `raw_jax`: a hand-written jitted JAX loop (Adam in jax.numpy, data on the
  device, shuffled per epoch): the limit for this model (JAX only).

Rows/s counts the epochs after the first (the first includes compilation).
TFLOP/s is 6 x parameters x rows/s (forward and backward of the matmuls).
Then digits (1,437 training rows): wall time of a whole `fit` and test
accuracy, textbook against kerakit. Needs no TensorFlow: on a machine with
only JAX or PyTorch, install keras, keras-tuner and kerakit without
dependencies and run it.

`--workload raw-table` trains on raw rows instead: 1,000,000 rows
(`--table-rows`) of eight numbers and three text columns (5, 40 and 400
levels; 2 % missing cells), a binary label. Both paths use the same
raw-column model (`kerakit.data.build_table_model`: its preprocessing layers
inside, vocabularies from the training rows):

- `textbook`: Keras's `fit` on the raw columns (text as the backend takes
  it), the preprocessing running in every step;
- `kerakit`: `kk.fit_table` (the rows encoded once, then the backend's
  engine: on JAX, the epochs jitted on the device).

Rows/s counts the epochs after the first; seconds is the whole call.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

BACKENDS = ("jax", "torch", "tensorflow")


def table(rows, features, classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    teacher = [rng.normal(size=(features, 64)) / np.sqrt(features), rng.normal(size=(64, classes)) / 8]
    y = np.argmax(np.tanh(x @ teacher[0]) @ teacher[1], axis=1).astype(np.int32)
    cut = int(rows * 0.9)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


class EpochTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch, logs=None):
                inner.start = time.perf_counter()

            def on_epoch_end(inner, epoch, logs=None):
                self.times.append(time.perf_counter() - inner.start)

        self.times = []
        self.callback = Timer()


def build(args, policy="float32", seed=0):
    import keras

    import kerakit as kk

    keras.config.set_dtype_policy(policy)
    spec = kk.ProblemSpec(task="multiclass", num_classes=args.classes)
    model = kk.build_model(spec, input_shape=(args.features,), units=(args.width,) * args.depth,
                           dropout=0.0, optimizer="adam", learning_rate=1e-3, seed=seed)
    keras.config.set_dtype_policy("float32")
    return model


def accuracy(model, x, y):
    probabilities = model.predict(x, batch_size=8192, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def measure(name, train_fn, model, args, rows, test):
    timer = EpochTimer()
    start = time.perf_counter()
    train_fn(model, timer.callback)
    total = time.perf_counter() - start
    steady = timer.times[1:] or timer.times
    rows_per_s = rows / float(np.mean(steady))
    params = model.count_params()
    return {"path": name, "rows_per_s": rows_per_s, "tflops": 6 * params * rows_per_s / 1e12,
            "first_epoch_s": timer.times[0], "total_s": total, "test_accuracy": accuracy(model, *test)}


def raw_jax(args, train, test):
    """The limit: a plain jitted JAX MLP loop with Adam, data on the device."""
    import jax
    import jax.numpy as jnp

    x, y = jax.device_put(train[0]), jax.device_put(train[1])
    sizes = [args.features] + [args.width] * args.depth + [args.classes]
    key = jax.random.key(0)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        key, sub = jax.random.split(key)
        limit = np.sqrt(6 / (fan_in + fan_out))
        params.append((jax.random.uniform(sub, (fan_in, fan_out), minval=-limit, maxval=limit),
                       jnp.zeros(fan_out)))

    def loss_fn(params, xb, yb):
        h = xb
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        logits = h @ params[-1][0] + params[-1][1]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1))

    def adam(state, grads, step, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
        params, m, v = state
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        scale = lr * jnp.sqrt(1 - b2 ** step) / (1 - b1 ** step)
        params = jax.tree_util.tree_map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v)
        return params, m, v

    n, batch = len(train[1]), args.batch
    steps = n // batch

    @jax.jit
    def epoch(state, key, start_step):
        order = jax.random.permutation(key, n)[: steps * batch].reshape(steps, batch)

        def body(carry, rows):
            state, step = carry
            grads = jax.grad(loss_fn)(state[0], x[rows], y[rows])
            return (adam(state, grads, step + 1.0), step + 1.0), None

        (state, _), _ = jax.lax.scan(body, (state, start_step), order)
        return state

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, zeros)
    times = []
    for e in range(args.epochs):
        start = time.perf_counter()
        state = epoch(state, jax.random.fold_in(key, e), float(e * steps))
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    h = jnp.asarray(test[0])
    for w, b in state[0][:-1]:
        h = jax.nn.relu(h @ w + b)
    acc = float(jnp.mean(jnp.argmax(h @ state[0][-1][0] + state[0][-1][1], axis=1) == test[1]))
    params_count = sum(w.size + b.size for w, b in state[0])
    rows_per_s = steps * batch / float(np.mean(times[1:] or times))
    return {"path": "raw_jax", "rows_per_s": rows_per_s, "tflops": 6 * params_count * rows_per_s / 1e12,
            "first_epoch_s": times[0], "total_s": sum(times), "test_accuracy": acc}


def digits_run(backend, epochs=30):
    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import kerakit as kk

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split((x / 16).astype(np.float32), y, stratify=y,
                                                        random_state=0)
    spec = kk.infer_spec(y_train)
    results = []
    for name in ("textbook", "kerakit"):
        model = kk.build_model(spec, input_shape=(64,), seed=0)
        start = time.perf_counter()
        if name == "textbook":
            model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.2, verbose=0)
        else:
            kk.fit(model, x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.2, verbose=0,
                   seed=0)
        seconds = time.perf_counter() - start
        results.append({"backend": backend, "workload": "digits", "path": name, "seconds": seconds,
                        "test_accuracy": float(np.mean(np.argmax(model.predict(x_test, verbose=0), 1)
                                                       == y_test))})
        keras.backend.clear_session()
    return results


def raw_rows(rows, seed=0):
    """A raw table: eight numbers, three text columns (5, 40, 400 levels), a binary label."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 8)).astype(np.float32),
                         columns=[f"x{i}" for i in range(8)])
    effects = np.zeros(rows)
    for name, levels in (("color", 5), ("city", 40), ("shop", 400)):
        codes = rng.integers(0, levels, rows)
        effects += rng.normal(size=levels)[codes] * (1.5 if levels < 100 else 0.5)
        frame[name] = np.asarray([f"{name}_{i}" for i in range(levels)], dtype=object)[codes]
    logit = np.tanh(frame["x0"] * frame["x1"]) + frame["x2"] - 0.5 * frame["x3"] ** 2 + effects
    frame["label"] = (logit + rng.logistic(size=rows) * 0.5 > np.median(logit)).astype(int)
    for name in ("x4", "city"):
        frame.loc[rng.random(rows) < 0.02, name] = None
    return frame


def raw_table_worker(args):
    """`fit_table` against Keras's `fit` on the same raw-column model (see the module docstring)."""
    import keras

    import kerakit as kk
    from kerakit.data import (
        StatsAccumulator,
        TargetEncoder,
        backend_inputs,
        build_table_model,
        infer_schema,
        split_table,
        to_inputs,
    )

    frame = raw_rows(args.table_rows)
    options = dict(members=4, units=(128, 128))
    epochs, batch = args.epochs, args.table_batch

    # textbook: the same model, Keras's fit on the raw columns
    schema = infer_schema(frame, target="label")
    encoder = TargetEncoder("classification").fit(frame["label"], "label")
    labels = encoder.labels(frame["label"])
    parts = split_table(labels, validation=0.1, test=0.0, seed=0)
    inputs = to_inputs(frame, schema)
    take = {k: {c: v[rows] for c, v in inputs.items()} for k, rows in parts.items()}
    stats = StatsAccumulator(schema).update(take["train"]).result()
    rows = len(parts["train"])
    steps = epochs * -(-rows // batch)
    start = time.perf_counter()
    model, train_model = build_table_model(schema, stats, encoder, body="table", seed=0,
                                           steps=steps, **options)
    x = backend_inputs(train_model, take["train"])
    x_val = backend_inputs(train_model, take["validation"])
    timer = EpochTimer()
    train_model.fit(x, labels[parts["train"]], batch_size=batch, epochs=epochs, shuffle=True,
                    validation_data=(x_val, labels[parts["validation"]]), callbacks=[timer.callback],
                    verbose=0)
    seconds = time.perf_counter() - start
    predicted = np.asarray(model.predict(backend_inputs(model, take["validation"]), batch_size=8192,
                                         verbose=0))[:, 0] >= 0.5
    yield {"path": "textbook", "rows": args.table_rows, "seconds": seconds,
           "rows_per_s": rows / float(np.mean(timer.times[1:] or timer.times)),
           "first_epoch_s": timer.times[0],
           "val_accuracy": float(np.mean(predicted == labels[parts["validation"]]))}
    keras.backend.clear_session()

    # kerakit: fit_table from the same DataFrame, the same split and model options
    timer = EpochTimer()
    start = time.perf_counter()
    result = kk.fit_table(frame, target="label", validation=0.1, test=0.0, seed=0, epochs=epochs,
                          batch_size=batch, patience=None, callbacks=[timer.callback], **options)
    seconds = time.perf_counter() - start
    yield {"path": "kerakit", "rows": args.table_rows, "seconds": seconds,
           "rows_per_s": rows / float(np.mean(timer.times[1:] or timer.times)),
           "first_epoch_s": timer.times[0], "val_accuracy": result.report["validation"]["accuracy"]}


def worker(args):
    import keras

    if args.workload == "raw-table":
        backend = keras.backend.backend()
        for result in raw_table_worker(args):
            print(json.dumps({"backend": backend, "workload": "raw-table", **result}), flush=True)
        print(json.dumps({"backend": backend, "workload": "modules",
                          "tensorflow_imported": "tensorflow" in sys.modules}), flush=True)
        return

    import kerakit as kk

    backend = keras.backend.backend()
    train, test = table(args.rows, args.features, args.classes)
    rows = len(train[1])
    fit_kwargs = dict(batch_size=args.batch, epochs=args.epochs, verbose=0)

    def textbook(model, timer):
        model.fit(*train, callbacks=[timer], shuffle=True, **fit_kwargs)

    def textbook_spe16(model, timer):
        model.steps_per_execution = 16
        model.train_function = None
        model.fit(*train, callbacks=[timer], shuffle=True, **fit_kwargs)

    def kerakit_fit(model, timer):
        kk.fit(model, *train, callbacks=[timer], seed=0, **fit_kwargs)

    paths = [("textbook", textbook, "float32")]
    if backend != "torch":
        paths.append(("textbook_spe16", textbook_spe16, "float32"))
    paths.append(("kerakit", kerakit_fit, "float32"))
    if args.bf16:
        paths.append(("kerakit_bf16", kerakit_fit, "mixed_bfloat16"))
    for name, fn, policy in paths:
        result = measure(name, fn, build(args, policy), args, rows, test)
        print(json.dumps({"backend": backend, "workload": "table", **result}), flush=True)
        keras.backend.clear_session()
    if backend == "jax":
        print(json.dumps({"backend": backend, "workload": "table", **raw_jax(args, train, test)}), flush=True)
    if not args.no_digits:
        for result in digits_run(backend):
            print(json.dumps(result), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="also train kerakit under mixed_bfloat16")
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--workload", choices=["mlp", "raw-table"], default="mlp",
                        help="mlp: the generated matrix; raw-table: raw rows through fit_table")
    parser.add_argument("--table-rows", type=int, default=1_000_000)
    parser.add_argument("--table-batch", type=int, default=4096)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    given = list(argv if argv is not None else sys.argv[1:])
    forwarded = []
    for i, arg in enumerate(given):  # everything but --backends (and its value) goes to the workers
        if arg.startswith("--backends") or (i and given[i - 1] == "--backends"):
            continue
        forwarded.append(arg)
    results = []
    for backend in args.backends.split(","):
        if importlib.util.find_spec(backend) is None:
            print(f"# {backend}: not installed, skipped", flush=True)
            continue
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run([sys.executable, __file__, "--worker", *forwarded], env=env,
                             capture_output=True, text=True)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0:
            print(f"# {backend} failed:\n{out.stderr[-3000:]}", flush=True)
        results.extend(lines)
        for r in lines:
            print(json.dumps(r), flush=True)
    print()
    print("| backend | path | rows/s | TFLOP/s | first epoch s | test accuracy |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        if r["workload"] == "table":
            print(f"| {r['backend']} | {r['path']} | {r['rows_per_s']:,.0f} | {r['tflops']:.2f} | "
                  f"{r['first_epoch_s']:.2f} | {r['test_accuracy']:.4f} |")
    if any(r["workload"] == "raw-table" for r in results):
        print()
        print("| backend | raw rows | path | rows/s | first epoch s | whole call s | validation accuracy |")
        print("|---|---:|---|---:|---:|---:|---:|")
        for r in results:
            if r["workload"] == "raw-table":
                print(f"| {r['backend']} | {r['rows']:,} | {r['path']} | {r['rows_per_s']:,.0f} | "
                      f"{r['first_epoch_s']:.2f} | {r['seconds']:.1f} | {r['val_accuracy']:.4f} |")
        for r in results:
            if r["workload"] == "modules":
                print(f"# {r['backend']}: TensorFlow imported: {r['tensorflow_imported']}")
    print()
    print("| backend | digits path | seconds | test accuracy |")
    print("|---|---|---:|---:|")
    for r in results:
        if r["workload"] == "digits":
            print(f"| {r['backend']} | {r['path']} | {r['seconds']:.2f} | {r['test_accuracy']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
