"""Argument checks shared by coursekit and the reference implementations."""
import numbers

import numpy as np


def positive_int(name, value):
    """Return ``value`` as an int, or raise ValueError unless it is an integer >= 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def real(name, value, low=None, strict_low=False):
    """Return ``value`` as a float, or raise ValueError unless it is a real number in range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"{name}: expected a real number, got nan")
    if low is not None and (value <= low if strict_low else value < low):
        sign = ">" if strict_low else ">="
        raise ValueError(f"{name}: expected a number {sign} {low}, got {value!r}")
    return value
