"""Figures for `kerakit.tuning`: each trial's score and the best so far.

Returns a `matplotlib.figure.Figure` built without pyplot; never calls `show()`.
"""

import numpy as np


def plot_trials(trials, objective, direction="min"):
    """Returns a Figure: each trial's score (± std over folds) and the best so far.

    Example:

    ```python
    fig = plot_trials(result.trials, result.objective, result.direction)
    fig.savefig("trials.png")
    ```
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    done = trials[trials["status"] == "COMPLETED"] if len(trials) else trials
    if len(done):
        order = np.arange(1, len(done) + 1)
        score = done[objective].to_numpy(dtype=float)
        spread = done[f"{objective}_std"].to_numpy(dtype=float)
        ax.errorbar(order, score, yerr=np.nan_to_num(spread), fmt="o", alpha=0.7, label="trial")
        best = np.fmax.accumulate(score) if direction == "max" else np.fmin.accumulate(score)
        ax.step(order, best, where="post", color="C3", label="best so far")
        ax.legend()
    ax.set_xlabel("trial (in order)")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per trial ({'higher' if direction == 'max' else 'lower'} is better)")
    return fig
