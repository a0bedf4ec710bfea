"""Numerical gradients and relative error: the one implementation lives in coursekit.

coursekit is the small package students receive with the exercises (it holds no
reference code), so the visible tests, the hidden checks, the book and the tests share it.
"""
from coursekit.gradcheck import numerical_gradient, rel_error

__all__ = ["numerical_gradient", "rel_error"]
