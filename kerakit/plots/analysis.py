"""Figures for `kerakit.analysis`: permutation importances.

Each function returns a `matplotlib.figure.Figure` built without pyplot (so no
GUI backend is touched) and never calls `show()`.
"""


def plot_importance(importance, top=20, title=None):
    """Horizontal bar plot of permutation importances (mean ± std), largest on top.

    Returns a `matplotlib.figure.Figure`; never calls `show()`.

    Example:

    ```python
    fig = plot_importance(kerakit.permutation_importance(model, x_test, y_test))
    fig.savefig("importance.png")
    ```
    """
    from matplotlib.figure import Figure

    count = min(int(top), len(importance.features))
    names = list(importance.features[:count])[::-1]
    mean = importance.mean[:count][::-1]
    std = importance.std[:count][::-1]
    fig = Figure(figsize=(6.4, max(2.4, 0.32 * count + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(names, mean, xerr=std, color="tab:blue", ecolor="0.3", capsize=2)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set_xlabel(f"drop in {importance.metric} when shuffled (baseline {importance.baseline:.3g})")
    ax.set_title(title or "Permutation feature importance")
    return fig
