"""The helpers that the visible tests of the course's notebooks use.

This package is what students receive beside the released notebooks: assertions with
messages written for them (``expect``), numerical gradients (``gradcheck``) and
``python -m coursekit check NOTEBOOK``, which runs a notebook and lists its tests. It also
holds the kernel's side of a hidden test (``serve``, ``wire``): the grader asks the kernel
for values through it, as plain data. It holds no reference implementation and no hidden
test.
"""
from .expect import (CheckFailed, diagnose, expect_array, expect_close, expect_equal,
                     expect_float, expect_grad, expect_tuple, expect_unchanged)
from .gradcheck import numerical_gradient, rel_error

__all__ = ["CheckFailed", "diagnose", "expect_array", "expect_close", "expect_equal",
           "expect_float", "expect_grad", "expect_tuple", "expect_unchanged",
           "numerical_gradient", "rel_error"]
