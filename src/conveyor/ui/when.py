"""The date range of a runs listing (``since``, ``until``), read from a query string.

The page sends epoch seconds (it turns the dates a person picked into their local midnights,
which only the browser knows); a script or a person typing a URL may rather write ISO 8601.
Both listings, the UI's and the server API's, read them here, so that a bad value is refused
the same way by each: where, what was expected, what was found, and how to write it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

#: How a time may be written, said by every refusal.
EXPECTED = "epoch seconds (1764547200) or an ISO 8601 date or time (2026-12-01, 2026-12-01T09:30:00Z)"


class BadRange(ValueError):
    """A ``since`` or ``until`` that is not a time, or a range that ends before it starts."""

    def __init__(self, where: str, found: str, hint: str, expected: str = EXPECTED) -> None:
        self.where, self.found, self.hint, self.expected = where, found, hint, expected
        super().__init__(f"{where}: expected {expected}, found {found!r}; {hint}")


def instant(value: str, where: str) -> float | None:
    """``value`` as epoch seconds (None when empty). A date or time without a zone is UTC."""
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise BadRange(where, value, "a time is a finite number of seconds")
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        hint = "write the date as YYYY-MM-DD, a time as YYYY-MM-DDTHH:MM[:SS][Z]"
        raise BadRange(where, value, hint) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class Range:
    """Runs started at or after ``since`` and before ``until`` (each None: unbounded)."""

    since: float | None = None
    until: float | None = None

    def holds(self, started: float | None) -> bool:
        """Whether a run started at ``started`` is in the range (a run not started yet is
        in no bounded range: it has no start to compare)."""
        if self.since is None and self.until is None:
            return True
        if started is None:
            return False
        return (self.since is None or started >= self.since) and (self.until is None or started < self.until)


def date_range(since: str, until: str) -> Range:
    """The range ``since`` and ``until`` say (see :func:`instant`); refused when it ends
    before it starts, which would list nothing and look like no runs."""
    got = Range(instant(since, "since"), instant(until, "until"))
    if got.since is not None and got.until is not None and got.until < got.since:
        raise BadRange("until", until, "swap them", expected=f"a time after since ({since})")
    return got
