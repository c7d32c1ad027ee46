"""Secret backends: values a step declares in ``secrets:``, never written anywhere."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any


class SecretsBackend(ABC):
    """Where declared secrets come from."""

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The secret's value, or None if this backend does not have it."""

    #: Where the values come from, for error messages.
    where: str = "secrets"


class NoSecrets(SecretsBackend):
    """No secrets at all: a step that declares one fails with a message."""

    where = "no secrets backend (secrets: {type: none})"

    def get(self, name: str) -> str | None:
        return None


class EnvSecrets(SecretsBackend):
    """Secrets from the environment of the conveyor process."""

    where = "the environment"

    def __init__(self, **config: Any) -> None:
        if config:
            raise ValueError(f"secrets 'env' takes no config, found {sorted(config)}")
        # A snapshot: during a run, declared secrets are taken out of os.environ.
        self._values = dict(os.environ)

    def get(self, name: str) -> str | None:
        return self._values.get(name)


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=value`` lines; ``export`` prefixes, comments and quotes are understood."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


class DotenvSecrets(SecretsBackend):
    """Secrets from a ``.env`` file."""

    def __init__(self, location: str = ".env") -> None:
        self.where = f"the dotenv file {location}"
        path = Path(location)
        self._values = parse_dotenv(path.read_text(encoding="utf-8")) if path.exists() else {}

    def get(self, name: str) -> str | None:
        return self._values.get(name)
