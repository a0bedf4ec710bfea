"""Synthetic sequence tasks: the implementation is coursekit.tasks (students receive it too)."""
from coursekit.tasks import adding_problem, copy_task, toy_timeseries, toy_timeseries_batch

__all__ = ["adding_problem", "copy_task", "toy_timeseries", "toy_timeseries_batch"]
