"""Figures for `kerakit.active`: learning curves of an active-learning simulation.

Returns a `matplotlib.figure.Figure` built without pyplot; never calls `show()`.
"""


def plot_active_learning(simulation, split, targets=()):
    """Labels → metric for each strategy: mean over seeds with the min–max band.

    Args:
        simulation: a `kerakit.active.Simulation` (its `curves`, `labels`,
            `metric`, `baseline`, `seeds`).
        split: which curves to draw ("validation" or "test").
        targets: metric values to mark with horizontal lines.

    Example:

    ```python
    fig = plot_active_learning(kk.simulate(spec, x_pool, y_pool, x_val, y_val), "validation")
    ```
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, curves in simulation.curves.items():
        values = curves[split]
        style = {"color": "black", "linestyle": "--"} if name == simulation.baseline else {}
        line, = ax.plot(simulation.labels, values.mean(axis=0), label=name, linewidth=1.8, **style)
        ax.fill_between(simulation.labels, values.min(axis=0), values.max(axis=0), alpha=0.15,
                        color=line.get_color())
    for target in targets:
        ax.axhline(target, color="gray", linewidth=0.8, linestyle=":")
    ax.set_xlabel("labelled examples")
    ax.set_ylabel(f"{split} {simulation.metric}")
    ax.set_title(f"Active learning: mean of {len(simulation.seeds)} seed(s), band = min to max")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
