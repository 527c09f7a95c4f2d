"""Search spaces in scikit-learn's idiom, mapped onto Keras Tuner hyperparameters.

A space is a dict: a list is a choice, `(low, high)` / `(low, high, "log")`
is an int or float range, a scipy distribution is sampled, a single value is
fixed. A list of dicts is a union of grids (grid search only). Each entry is
declared as a Keras Tuner hyperparameter for the oracle; `decode` turns a
trial's values back into the values the model is built with.
"""

import itertools
import numbers

from kerakit.errors import ConfigError

# Options read by `fit` rather than by the model builder.
FIT_OPTIONS = ("batch_size", "epochs")

# The default search space of the "mlp" body (issue 5): depth, units,
# dropout, L2, optimizer, log-scaled learning rate, batch size. Options not
# named here (l1, batch norm, activation) keep the body's defaults.
DEFAULT_SPACE = {
    "depth": [1, 2, 3],
    "units_0": [32, 64, 128, 256],
    "units_1": [32, 64, 128, 256],
    "units_2": [32, 64, 128, 256],
    "dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
    "l2": [0.0, 1e-5, 1e-4, 1e-3],
    "optimizer": ["adam", "rmsprop", "sgd", "adagrad"],
    "learning_rate": (1e-4, 1e-1, "log"),
    "batch_size": [16, 32, 64, 128],
}

# Grid search needs a finite space: 3 x 2 x 2 = 12 candidates.
DEFAULT_GRID = {
    "units": [(64,), (128,), (128, 64)],
    "dropout": [0.0, 0.2],
    "optimizer": ["adam", "rmsprop"],
}

# Default spaces of the image, sequence (kerakit/bodies.py, issue 16) and table bodies:
# body name → (random / Bayesian / Hyperband space, grid).
BODY_SPACES = {
    "cnn": ({
        "conv_blocks": [1, 2, 3],
        "conv_filters_0": [16, 32, 64],
        "conv_filters_1": [32, 64, 128],
        "conv_filters_2": [64, 128],
        "dropout": [0.0, 0.1, 0.25, 0.4],
        "units": [0, 64, 128],
        "learning_rate": (1e-4, 1e-2, "log"),
        "batch_size": [16, 32, 64],
    }, {"filters": [(32,), (32, 64)], "dropout": [0.0, 0.25], "learning_rate": [1e-3, 3e-3]}),
    "sequence": ({
        "sequence_conv_blocks": [0, 1, 2],
        "sequence_conv_filters_0": [32, 64, 128],
        "sequence_conv_filters_1": [32, 64, 128],
        "transformer_blocks": [0, 1, 2],
        "heads": [1, 2, 4],
        "key_dim": [16, 32, 64],
        "dropout": [0.0, 0.1, 0.2, 0.3],
        "units": [0, 32, 64],
        "learning_rate": (1e-4, 1e-2, "log"),
        "batch_size": [16, 32, 64],
    }, {"transformer_blocks": [0, 1], "filters": [(32,), (64,)], "dropout": [0.0, 0.2]}),
    # The TabM-style ensemble of fit_table's default (issue 13), trained with
    # AdamW as there; depth/units_i as in "mlp", members the ensemble size.
    "table": ({
        "members": [4, 8, 16],
        "depth": [1, 2, 3],
        "units_0": [64, 128, 256, 512],
        "units_1": [64, 128, 256, 512],
        "units_2": [64, 128, 256, 512],
        "dropout": [0.0, 0.1, 0.2, 0.3],
        "optimizer": ["adamw"],
        "learning_rate": (3e-4, 1e-2, "log"),
        "batch_size": [32, 64, 128, 256],
    }, {"members": [4, 8], "units": [(128, 128), (256, 256)], "dropout": [0.0, 0.1],
        "optimizer": ["adamw"]}),
}


def _plain(value):
    """NumPy scalars → Python scalars, so Keras Tuner and JSON accept them."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _is_distribution(value):
    return hasattr(value, "rvs") and hasattr(value, "ppf")


class Choice:
    """A list of values. Values Keras Tuner cannot hold (tuples, None, mixed
    types) are stored as their text and decoded back."""

    kind = "choice"

    def __init__(self, name, values):
        values = [_plain(v) for v in values]
        if not values:
            raise ConfigError(f"The search space lists no values for {name!r}. Give at least one.")
        self.name = name
        self.values = list(dict.fromkeys(values))
        types = {type(v) for v in self.values}
        if types <= {int, float} and float in types:
            self.encoded = [float(v) for v in self.values]
        elif len(types) == 1 and types <= {int, float, str, bool}:
            self.encoded = list(self.values)
        else:
            self.encoded = [repr(v) for v in self.values]
        self._decode = dict(zip(self.encoded, self.values, strict=True))

    def declare(self, hp):
        if len(self.encoded) == 1:
            return hp.Fixed(self.name, self.encoded[0])
        return hp.Choice(self.name, self.encoded, default=self.encoded[0])

    def decode(self, value):
        return self._decode.get(value, value)

    def grid(self):
        return list(self.values)

    def describe(self):
        return repr(self.values)

    def extremes(self):
        return list(self.values)


class Range:
    """`(low, high)` or `(low, high, "log")`: integers if both ends are integers."""

    kind = "range"

    def __init__(self, name, spec):
        low, high = _plain(spec[0]), _plain(spec[1])
        sampling = spec[2] if len(spec) == 3 else "linear"
        ok = (len(spec) in (2, 3) and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                          for v in (low, high)) and sampling in ("linear", "log"))
        if not ok or not low < high or (sampling == "log" and low <= 0):
            raise ConfigError(
                f"A range in the search space must be (low, high) or (low, high, 'log') with "
                f"low < high (and low > 0 for 'log'). Received: {name}={tuple(spec)!r}"
            )
        self.name, self.low, self.high, self.sampling = name, low, high, sampling
        self.integer = isinstance(low, int) and isinstance(high, int)

    def declare(self, hp):
        if self.integer:
            return hp.Int(self.name, self.low, self.high, sampling=self.sampling)
        return hp.Float(self.name, float(self.low), float(self.high), sampling=self.sampling)

    def decode(self, value):
        return int(value) if self.integer else float(value)

    def describe(self):
        return repr((self.low, self.high, self.sampling))

    def grid(self):
        if self.integer and self.sampling == "linear":
            return list(range(self.low, self.high + 1))
        return None

    def extremes(self):
        return [self.low, self.high]


class Distribution:
    """A scipy distribution, sampled through its quantile function: the oracle
    draws a quantile in (0, 1) and `decode` maps it through `ppf`."""

    kind = "distribution"
    EDGE = 1e-6  # keeps ppf finite for unbounded distributions

    def __init__(self, name, dist):
        self.name, self.dist = name, dist
        self.discrete = hasattr(dist, "pmf")

    def declare(self, hp):
        return hp.Float(self.name, self.EDGE, 1 - self.EDGE, default=0.5)

    def decode(self, value):
        drawn = float(self.dist.ppf(value))
        return int(drawn) if self.discrete else drawn

    def grid(self):
        return None

    def describe(self):
        dist = getattr(self.dist, "dist", self.dist)
        return f"{getattr(dist, 'name', type(dist).__name__)}{getattr(self.dist, 'args', ())}" \
            f"{sorted(getattr(self.dist, 'kwds', {}).items())}"

    def extremes(self):
        return [self.decode(self.EDGE), self.decode(1 - self.EDGE)]


def make_param(name, value):
    if _is_distribution(value):
        return Distribution(name, value)
    if isinstance(value, tuple):
        return Range(name, value)
    if isinstance(value, (list, range)):
        return Choice(name, list(value))
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # a NumPy array of values
        return Choice(name, value.tolist())
    return Choice(name, [value])


class SearchSpace:
    """A search space: one dict, or a list of dicts that is a union of grids.

    Args:
        space: a dict `{name: values}` or a list of such dicts. For each name,
            a list is a choice, `(low, high)` or `(low, high, "log")` is a
            range (integers when both ends are), a scipy distribution is
            sampled, and a single value is fixed.

    Example:

    >>> space = SearchSpace([{"units": [5, 8, 10], "dropout": [.4, .6, .8]},
    ...                      {"units": [10, 15], "dropout": [.6, .8, .9]}])
    >>> space.size
    15
    """

    def __init__(self, space):
        grids = [space] if isinstance(space, dict) else space
        if not isinstance(grids, (list, tuple)) or not grids or not all(
                isinstance(g, dict) and g for g in grids):
            raise ConfigError(
                "`space` must be a non-empty dict {name: values}, a list of such dicts (a union "
                "of grids), a build(hp) function or a keras_tuner.HyperModel. "
                f"Received: space={space!r}"
            )
        for grid in grids:
            for name in grid:
                if not isinstance(name, str) or not name.isidentifier():
                    raise ConfigError(
                        f"Search-space names must be identifiers such as 'dropout'. Received: {name!r}"
                    )
        self.grids = [{name: make_param(name, value) for name, value in g.items()} for g in grids]
        self.names = list(dict.fromkeys(name for g in self.grids for name in g))
        self._union = None

    def __repr__(self):
        return f"SearchSpace({len(self.grids)} grid(s): {', '.join(self.names)})"

    def describe(self):
        """Stable text of the space (distributions by name and parameters), for fingerprints."""
        return repr([{name: p.describe() for name, p in g.items()} for g in self.grids])

    @property
    def is_union(self):
        return len(self.grids) > 1

    @property
    def finite(self):
        return all(p.grid() is not None for g in self.grids for p in g.values())

    @property
    def size(self):
        """Number of candidates of a finite space (None when a range or distribution is continuous)."""
        if not self.finite:
            return None
        total = 0
        for grid in self.grids:
            count = 1
            for param in grid.values():
                count *= len(param.grid())
            total += count
        return total

    def check_for(self, tuner):
        """Refuses what a tuner cannot search: a union of grids or a continuous entry outside grid search."""
        if tuner == "grid":
            loose = [p.name for g in self.grids for p in g.values() if p.grid() is None]
            if loose:
                raise ConfigError(
                    f"Grid search needs a finite list of values for every entry; {sorted(set(loose))} "
                    f"are continuous ranges or distributions. List the values to try, e.g. "
                    f"'dropout': [0.1, 0.3], or use tuner='random' or 'bayesian'."
                )
        elif self.is_union:
            raise ConfigError(
                f"A list of dicts is a union of grids, which only tuner='grid' searches. "
                f"Received tuner={tuner!r}: merge the dicts into one for a random, Bayesian or "
                f"Hyperband search."
            )

    # Keras Tuner side -----------------------------------------------------

    def _union_params(self):
        """One Choice per name holding every grid's values (grid search)."""
        if self._union is None:
            values = {}
            for grid in self.grids:
                for name, param in grid.items():
                    values.setdefault(name, []).extend(param.grid())
            self._union = {name: Choice(name, vals) for name, vals in values.items()}
        return self._union

    def hyperparameters(self, tuner):
        """Returns `keras_tuner.HyperParameters` declaring this space for `tuner`."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        if tuner == "grid":
            if self.is_union:
                hp.Choice("grid", list(range(len(self.grids))), default=0)
            for param in self._union_params().values():
                param.declare(hp)
        else:
            for param in self.grids[0].values():
                param.declare(hp)
        return hp

    def candidates(self):
        """Every candidate of a finite space as Keras Tuner values, grid by grid, in order."""
        union = self._union_params()
        out = []
        for index, grid in enumerate(self.grids):
            names = list(grid)
            for combo in itertools.product(*(grid[n].grid() for n in names)):
                # Names this grid does not use hold their first value; `decode` drops them.
                values = {n: p.encoded[0] for n, p in union.items()}
                if self.is_union:
                    values["grid"] = index
                for name, value in zip(names, combo, strict=True):
                    values[name] = union[name].encoded[union[name].values.index(value)]
                out.append(values)
        return out

    def decode(self, values, tuner="random"):
        """Maps a trial's Keras Tuner values to the values the model is built with."""
        if tuner == "grid":
            grid = self.grids[int(values.get("grid", 0))]
            union = self._union_params()
            return {name: union[name].decode(values[name]) for name in grid if name in values}
        params = self.grids[0]
        return {name: params[name].decode(values[name]) for name in params if name in values}

    def extremes(self):
        """`(grid index, name, value)` for every value a search may try at the edges of its range."""
        for index, grid in enumerate(self.grids):
            for name, param in grid.items():
                for value in param.extremes():
                    yield index, name, value
