"""What the API may hand out: no credentials, and valid JSON whatever a run recorded."""

from __future__ import annotations

import re
from typing import Any

from conveyor.runlog.codec import finite

__all__ = ["finite", "without_credentials"]

#: Config keys whose values are credentials wherever they appear.
SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|key|credential|auth)", re.IGNORECASE)
#: A URL's password. Each part is bounded, so that a long run of letters (a log line of
#: 60,000 x's) is not rescanned from each of its characters: unbounded, that took seconds per
#: line (hours for the relay's 8 MiB), holding the lock every other request waits for.
URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]{0,31}://)(?P<user>[^:/@\s]{0,256}):(?P<password>[^@/\s]{1,1024})@"
)
MASK = "***"


def without_credentials(value: Any) -> Any:
    """``value`` (a run's config) with URL passwords and credential-like keys masked."""
    if isinstance(value, dict):
        return {
            k: MASK if SECRET_KEYS.search(str(k)) and isinstance(v, str | int) else without_credentials(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_credentials(v) for v in value]
    if isinstance(value, str):
        return URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)
    return value
