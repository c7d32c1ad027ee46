"""Run log stores: where every run, step and attempt is recorded, behind one interface."""

from conveyor.runlog.base import RunLog, RunLogStore, RunNotFoundError, fold_steps, step_key

__all__ = ["RunLog", "RunLogStore", "RunNotFoundError", "fold_steps", "step_key"]
