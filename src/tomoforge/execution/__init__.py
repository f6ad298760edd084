"""Executors: where units run. Algorithms never see them."""

from tomoforge.execution.base import Executor, InlineExecutor
from tomoforge.execution.local import LocalExecutor

__all__ = ["Executor", "InlineExecutor", "LocalExecutor"]
