"""Argument checks shared by coursekit and the reference implementations."""
import numbers

import numpy as np


def positive_int(name, value):
    """Return ``value`` as an int, or raise ValueError unless it is an integer >= 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)
