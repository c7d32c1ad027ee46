"""CLI profiles: named server endpoints and tokens, in the user's config directory (mode 600).

CONVEYOR_PROFILE picks a profile; CONVEYOR_ENDPOINT and CONVEYOR_TOKEN override the stored
values (and, alone, make a profile of their own).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict, TypeGuard

from conveyor.errors import ConveyorError


class ProfileError(ConveyorError):
    """The profiles file or a profile cannot be used as asked (the message says why)."""


@dataclass(frozen=True)
class Profile:
    """A server to talk to and the token to use there."""

    name: str
    endpoint: str
    token: str | None

    def masked(self) -> str:
        if not self.token:
            return "(none)"
        return self.token[:6] + "…" + self.token[-4:] if len(self.token) > 12 else "****"


class StoredProfile(TypedDict):
    """One profile as the profiles file keeps it."""

    endpoint: str
    token: NotRequired[str | None]


class ProfilesFile(TypedDict):
    """The profiles file: the current profile's name and every profile by name."""

    current: NotRequired[str | None]
    profiles: dict[str, StoredProfile]


def _is_profiles(data: dict[str, object]) -> TypeGuard[ProfilesFile]:
    """Whether a decoded file has the profiles file's shape (keys of its own are kept)."""
    profiles, current = data["profiles"], data.get("current")
    shaped = isinstance(profiles, dict) and all(
        isinstance(v, dict) and isinstance(v.get("endpoint"), str) and isinstance(v.get("token"), str | None)
        for v in profiles.values()
    )
    return shaped and isinstance(current, str | None)


def path() -> Path:
    """Where profiles are kept (mode 600, under the user's config directory)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "conveyor" / "profiles.json"


def load() -> ProfilesFile:
    """The profiles file's content; a file of the wrong shape is a ProfileError."""
    try:
        data: object = json.loads(path().read_text())
    except FileNotFoundError:
        return {"current": None, "profiles": {}}
    except ValueError as exc:
        raise ProfileError(f"{path()} is not valid JSON ({exc}); fix or remove it") from None
    except OSError as exc:
        raise ProfileError(f"{path()} cannot be read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path()} should hold a JSON object, not {type(data).__name__}; fix or remove it")
    data.setdefault("profiles", {})
    if not _is_profiles(data):
        raise ProfileError(
            f"{path()} is not a profiles file: expected "
            '{"current": NAME, "profiles": {NAME: {"endpoint": URL, "token": TOKEN}}}; fix or remove it'
        )
    return data


def save(data: ProfilesFile) -> None:
    """Write the profiles file atomically, readable by its owner only."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)


def add(name: str, endpoint: str, token: str | None) -> None:
    """Add or replace a profile; the first one becomes current."""
    if not endpoint.startswith(("http://", "https://")):
        raise ProfileError(f"endpoint must be an http:// or https:// URL, not {endpoint!r}")
    data = load()
    data["profiles"][name] = {"endpoint": endpoint.rstrip("/"), "token": token}
    if not data.get("current"):
        data["current"] = name
    save(data)


def use(name: str) -> None:
    """Make a profile current."""
    data = load()
    if name not in data["profiles"]:
        raise ProfileError(f"no profile '{name}' (profiles: {', '.join(sorted(data['profiles'])) or 'none'})")
    data["current"] = name
    save(data)


def remove(name: str) -> None:
    """Forget a profile."""
    data = load()
    if data["profiles"].pop(name, None) is None:
        raise ProfileError(f"no profile '{name}'")
    if data.get("current") == name:
        data["current"] = next(iter(data["profiles"]), None)
    save(data)


def active() -> Profile | None:
    """The profile in force: CONVEYOR_PROFILE or the current one, with env overrides; or None."""
    data = load()
    name = os.environ.get("CONVEYOR_PROFILE") or data.get("current")
    stored: StoredProfile | None = None
    if name:
        if name not in data["profiles"] and os.environ.get("CONVEYOR_PROFILE"):
            raise ProfileError(f"CONVEYOR_PROFILE names no profile '{name}'")
        stored = data["profiles"].get(name)
    endpoint = os.environ.get("CONVEYOR_ENDPOINT") or (stored["endpoint"] if stored else None)
    if not endpoint:
        return None
    token = os.environ.get("CONVEYOR_TOKEN") or (stored.get("token") if stored else None)
    return Profile(name or "(environment)", endpoint, token)
