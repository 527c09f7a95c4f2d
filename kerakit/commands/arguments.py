"""Argument types the commands share: counts that must be positive, and paths checked as read.

argparse calls these while parsing, so a nonsense value is refused with the
usage line before anything loads.
"""

import argparse


def positive_int(text):
    """An argparse type: a whole number of at least 1.

    Example:

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1. Received: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1. Received: {value}")
    return value
