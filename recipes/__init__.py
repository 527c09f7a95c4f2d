"""kerakit's built-in recipes, installed as the package `kerakit_recipes`.

Each module is a runnable recipe: `kerakit run NAME` or `python recipes/NAME.py`.
"""
