"""The old import path of `kerakit.strategies` (moved down to the core floor)."""

from kerakit.strategies import (  # noqa: F401
    PRECISION_POLICIES,
    STRATEGIES,
    check_batch_size,
    get_strategy,
    is_chief,
    is_multiworker,
    model_scope,
    model_strategy,
    precision_policy,
    read_tf_config,
    save_on_chief,
    set_default_strategy,
    split_cpu,
    use_strategy_for_run,
)
