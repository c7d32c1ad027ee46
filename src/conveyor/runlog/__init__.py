"""Run log stores: where every run, step and attempt is recorded, behind one interface."""

from conveyor.runlog.base import RunLog, RunLogStore, RunNotFoundError
from conveyor.runlog.records import RunRecord, Status, StepRecord

__all__ = ["RunLog", "RunLogStore", "RunNotFoundError", "RunRecord", "Status", "StepRecord"]
