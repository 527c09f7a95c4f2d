"""plot_trials: each trial's score and the best so far."""

from kerakit.plots import plot_trials


def test_plot_trials_returns_a_figure():
    import pandas as pd
    from matplotlib.figure import Figure

    table = pd.DataFrame({"status": ["COMPLETED"] * 3, "val_auc": [0.7, 0.9, 0.8],
                          "val_auc_std": [0.01, 0.02, 0.0]})
    fig = plot_trials(table, "val_auc", "max")
    assert isinstance(fig, Figure)
    best_line = fig.axes[0].lines[-1].get_ydata()
    assert list(best_line) == [0.7, 0.9, 0.8][:1] + [0.9, 0.9]
