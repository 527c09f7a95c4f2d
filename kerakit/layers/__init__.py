"""Every custom Keras layer of kerakit, registered with Keras when this package is imported.

A `.keras` file kerakit wrote loads with `keras.saving.load_model(path,
safe_mode=True)` once `kerakit.layers` is imported; kerakit's own loaders
import it. Each layer is registered as `kerakit>Name`.

- `SpecOutput`: the identity layer holding a model's `ProblemSpec`;
- `EnsembleDense`, `EnsembleHead`, `EnsembleMean`: the TabM-style ensemble;
- `WeightedAverage`: the last layer of `kerakit.ensemble`'s models;
- raw-column models: `TableInput`, `CategoryLookup`, `CrossHash`,
  `FillMissing`, `MissingIndicator`, `SmoothClip`, `PiecewiseLinearEncoding`,
  `ValueIndicators`, `TableOutput` and the `log_poisson` loss.
"""

from kerakit.layers._base import PACKAGE
from kerakit.layers._ensemble import WeightedAverage
from kerakit.layers._lookup import (
    CategoryLookup,
    CrossHash,
    TableInput,
    input_dtype,
    quiet_input_names,
    table_input,
    text_in_graph,
)
from kerakit.layers._spec import SpecOutput, as_spec
from kerakit.layers._table import (
    LOG_LINK_MAX,
    FillMissing,
    MissingIndicator,
    PiecewiseLinearEncoding,
    SmoothClip,
    TableOutput,
    ValueIndicators,
    log_poisson,
)
from kerakit.layers._tabm import (
    EnsembleDense,
    EnsembleHead,
    EnsembleMean,
    ensemble_output,
    ensemble_stack,
)

__all__ = [
    "PACKAGE", "WeightedAverage", "CategoryLookup", "CrossHash", "TableInput", "input_dtype", "quiet_input_names", "table_input", "text_in_graph", "SpecOutput", "as_spec",
    "LOG_LINK_MAX", "FillMissing", "MissingIndicator", "PiecewiseLinearEncoding", "SmoothClip",
    "TableOutput", "ValueIndicators", "log_poisson", "EnsembleDense", "EnsembleHead", "EnsembleMean",
    "ensemble_output", "ensemble_stack",
]
