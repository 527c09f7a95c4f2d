"""The "table" body of raw-column models, and the defaults `fit_table` and `kerakit run csv` share.

Built from what the tabular deep-learning papers found to matter, and kept
where it measured well on kerakit's benchmark (`scripts/bench_tabular.py`,
BENCHMARKS.md):

- numbers are scaled robustly (median and interquartile range) and smoothly
  clipped (RealMLP, Holzmüller et al. 2024), and also encoded piecewise-
  linearly over quantile bins of the training rows (Gorishniy et al. 2022);
  a number with few distinct values (3 to `few_values`, 32) also gets one
  indicator per value, so a code's values can each have their own effect;
- a TabM-style ensemble (Gorishniy et al. 2025): k MLPs share each kernel
  through BatchEnsemble adapters, each has its own output layer, and the
  model averages their predictions;
- AdamW with a linear warm-up and a cosine decay over the planned steps;
  early stopping restores the best epoch's weights.

Every piece is a Keras layer (`kerakit.layers`), so the saved
`.keras` file still predicts from raw rows.
"""

import dataclasses

import numpy as np

from kerakit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TableDefaults:
    """Training and body defaults for raw-column models, tuned once for tables in general.

    `fit_table` and the csv recipe both read `TABLE_DEFAULTS`, and the csv
    recipe records it in the run manifest.

    Attributes:
        body: the default body ("table"; "mlp" is kerakit's earlier default).
        epochs: the most epochs; the learning-rate schedule spans them.
        row_budget: rows the "auto" epochs pass over at most (`epochs_for`):
            large tables train fewer epochs, small ones up to `epochs`.
        min_epochs: the fewest epochs "auto" plans.
        large_rows: from this many training rows on, `fit_table` trains
            `large_members` members instead of `members` (`members_for`).
        large_members: the ensemble size k for large tables.
        max_batch_size: the largest "auto" batch size (`batch_size_for`).
        patience: epochs without validation improvement before stopping.
        members: ensemble members k.
        units: width of each shared hidden layer.
        dropout: dropout rate after each hidden layer.
        learning_rate: AdamW's peak learning rate.
        weight_decay: AdamW's decoupled weight decay.
        warmup: fraction of the planned steps spent warming up.
        bins: quantile bins of the piecewise-linear encoding per number.
        few_values: a number with 3 to this many distinct training values
            also gets one indicator per value (`ValueIndicators`); 0 turns
            it off. On the 5-fold benchmark it changes 7 of 20 tables: a
            step-coded table +0.022 R² (5 of 5 folds), randhie +0.015,
            digits +0.002; fair, anes96, iris and grunfeld 0.001-0.007 lower,
            within their spread over folds (BENCHMARKS.md).
    """

    body: str = "table"
    epochs: int = 40
    row_budget: int = 600_000
    min_epochs: int = 6
    large_rows: int = 16_000
    large_members: int = 4
    max_batch_size: int = 1024
    patience: int = 10
    members: int = 8
    units: tuple = (192, 192)
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    bins: int = 16
    few_values: int = 32

    def batch_size_for(self, rows):
        """The "auto" batch size: about 64 steps per epoch, a power of two from 32 to 1024.

        Small tables get many small steps; from ~12,000 training rows on the
        batch is 256 (RealMLP's and TabM's), and from ~24,000 it grows to 512
        and then 1024: on a CPU a step's fixed cost, not its arithmetic,
        dominates a large table's epoch.

        >>> [TABLE_DEFAULTS.batch_size_for(n) for n in (300, 3_000, 6_000, 20_000, 40_000)]
        [32, 64, 128, 256, 512]
        """
        target = max(1.0, rows / 64)
        return int(min(self.max_batch_size, max(32, 2 ** round(np.log2(target)))))

    def epochs_for(self, rows):
        """The "auto" epochs: `row_budget` rows in all, from `min_epochs` to `epochs`.

        A fixed budget of rows seen (with `batch_size_for`, a fixed budget of
        steps) instead of a fixed number of epochs: 50,000 training rows train
        12 epochs, 20,000 train 30, and tables up to 15,000 training rows the
        full 40 as before.

        >>> [TABLE_DEFAULTS.epochs_for(n) for n in (5_000, 15_000, 20_000, 50_000, 500_000)]
        [40, 40, 30, 12, 6]
        """
        return int(min(self.epochs, max(self.min_epochs, -(-self.row_budget // max(1, rows)))))

    def members_for(self, rows):
        """The ensemble size for `rows` training rows: `members`, or `large_members` on large tables.

        Many rows leave less variance for an ensemble to average out; with
        half the members, each epoch costs about half, so the row budget
        buys twice the epochs (measured on the fit-time table of
        `scripts/bench_tabular.py`, 34,000 training rows: R² 0.910 with k=8
        for 9 epochs, 0.915 with k=4 for 18, at about the same CPU time).

        >>> [TABLE_DEFAULTS.members_for(n) for n in (1_000, 15_999, 16_000)]
        [8, 8, 4]
        """
        return self.large_members if rows >= self.large_rows else self.members

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


TABLE_DEFAULTS = TableDefaults()

# The options `build_table_model(body="table", ...)` accepts.
TABLE_OPTIONS = ("members", "units", "dropout", "learning_rate", "weight_decay", "warmup", "bins")


def table_options(**options):
    """The table body's settings: `TABLE_DEFAULTS` updated with `options` (None keeps a default)."""
    unknown = sorted(set(options) - set(TABLE_OPTIONS))
    if unknown:
        raise ConfigError(
            f"The 'table' body has no option(s) {unknown}. Its options are: "
            f"{', '.join(TABLE_OPTIONS)}. (units/dropout/l2 of the old default need body='mlp'.)"
        )
    settings = {k: getattr(TABLE_DEFAULTS, k) for k in TABLE_OPTIONS}
    settings.update({k: v for k, v in options.items() if v is not None})
    units = settings["units"]
    settings["units"] = (units,) if isinstance(units, int) else tuple(units)
    if not settings["units"] or any(isinstance(u, bool) or not isinstance(u, int) or u < 1
                                    for u in settings["units"]):
        raise ConfigError(
            f"`units` must be a positive integer or a sequence of them, one per hidden layer. "
            f"Received: units={units!r}"
        )
    if isinstance(settings["members"], bool) or not isinstance(settings["members"], int) \
            or settings["members"] < 1:
        raise ConfigError(f"`members` must be a positive integer. Received: "
                          f"members={settings['members']!r}")
    if not 0 <= settings["dropout"] < 1:
        raise ConfigError(f"`dropout` must be in [0, 1). Received: dropout={settings['dropout']!r}")
    return settings


def robust_center_scale(sample):
    """Median and a robust spread (IQR / 1.349, the standard deviation of a normal; std if 0)."""
    if sample is None or not len(sample):
        return 0.0, 1.0
    q25, median, q75 = np.quantile(sample, [0.25, 0.5, 0.75])
    scale = (q75 - q25) / 1.349
    if not scale > 0:
        scale = float(np.std(sample))
    return float(median), float(scale) if scale > 0 else 1.0


def quantile_edges(sample, bins):
    """Distinct quantiles of the training sample as bin edges (fewer when values repeat)."""
    if sample is None or not len(sample) or bins < 1:
        return []
    edges = np.unique(np.quantile(sample, np.linspace(0.0, 1.0, int(bins) + 1)))
    return edges.tolist() if len(edges) >= 2 else []


def _encode_number(column, stats, tensor, name, bins, few_values):
    from kerakit.layers import (
        FillMissing,
        MissingIndicator,
        PiecewiseLinearEncoding,
        SmoothClip,
        ValueIndicators,
    )

    sample = stats.get("sample")
    center, scale = robust_center_scale(sample)
    filled = FillMissing(center, name=f"{name}_fill")(tensor)
    parts = [SmoothClip(center, scale, name=f"{name}_scale")(filled)]
    edges = quantile_edges(sample, bins)
    if len(edges) > 2:  # two edges would repeat the scaled value
        parts.append(PiecewiseLinearEncoding(edges, name=f"{name}_ple")(filled))
    values = np.unique(sample) if sample is not None and len(sample) else []
    if 2 < len(values) <= few_values:  # a code: each value may have its own effect
        parts.append(ValueIndicators(values, name=f"{name}_values")(filled))
    if stats["missing"]:
        parts.append(MissingIndicator(name=f"{name}_missing")(tensor))
    return parts


def table_preprocessor(schema, stats, crosses=(), cross_bins=64, bins=TABLE_DEFAULTS.bins,
                       few_values=TABLE_DEFAULTS.few_values):
    """Like `make_preprocessor`, with robust scaling and piecewise-linear encodings for numbers."""

    from kerakit.data.preprocess import (
        ENCODERS,
        check_cross_bins,
        check_crosses,
        join_features,
        layer_names,
    )

    check_cross_bins(cross_bins)
    names = layer_names(schema)
    crosses = check_crosses(crosses, schema)

    def preprocess(inputs):
        parts = []
        for column in schema.columns:
            tensor, name = inputs[column.name], names[column.name]
            if column.kind == "numeric":
                parts.extend(_encode_number(column, stats[column.name], tensor, name, bins,
                                            few_values))
            else:
                parts.extend(ENCODERS[column.kind](column, stats[column.name], tensor, name))
        return join_features(parts, crosses, schema, stats, inputs, names, cross_bins)

    return preprocess


def learning_rate_schedule(learning_rate, steps, warmup):
    """Linear warm-up to `learning_rate`, then cosine decay to 1 % of it, over `steps` steps."""
    import keras

    if not steps:
        return float(learning_rate)
    warm = max(1, int(round(warmup * steps)))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.01, decay_steps=max(1, steps - warm), alpha=0.01,
        warmup_target=float(learning_rate), warmup_steps=warm)


def build_table_network(spec, inputs, preprocess, *, steps=None, seed=None, loss="auto",
                        metrics="auto", **options):
    """The trainable table model: preprocessing → k-member BatchEnsemble MLP → averaged head.

    Args:
        spec: the `ProblemSpec`.
        inputs: the dict of `keras.Input`s.
        preprocess: `table_preprocessor(...)`.
        steps: the planned number of training steps (epochs × batches), for
            the warm-up + cosine schedule; None keeps the rate constant.
        seed: seeds the weights.
        loss, metrics: "auto" for the spec's; or as given (a log-link target
            trains on `kerakit.layers.log_poisson`, without metrics).
        **options: `TABLE_OPTIONS` (members, units, dropout, learning_rate,
            weight_decay, warmup; bins is the preprocessor's).

    Returns:
        a compiled `keras.Model` whose output is the members' average.
    """
    import keras

    from kerakit import heads
    from kerakit.backend import set_random_seed
    from kerakit.layers import ensemble_output, ensemble_stack, quiet_input_names
    from kerakit.metadata import spec_output

    settings = table_options(**options)
    if seed is not None:
        set_random_seed(int(seed))
    x = ensemble_stack(preprocess(inputs), settings["units"], settings["members"],
                       settings["dropout"])
    outputs = spec_output(ensemble_output(spec, x), spec)
    with quiet_input_names():
        model = keras.Model(inputs, outputs, name=f"kerakit_table_{spec.task}")
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate_schedule(settings["learning_rate"], steps, settings["warmup"]),
        weight_decay=settings["weight_decay"])
    model.compile(optimizer=optimizer, loss=spec.loss if loss == "auto" else loss,
                  metrics=heads.make_metrics(spec) if metrics == "auto" else metrics)
    return model
