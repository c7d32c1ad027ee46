"""Checks of command-line values, run by the parser before any command does work.

A value that can never be right (a run id with a slash, a port of 99999, a URL with a broken
host, a token a header cannot carry) is refused here, naming the option, what it expects and
what it got; the parser turns that into a usage error and exit code 2. Each check is written
once and attached to every option that takes such a value, so commands added later get the
same rule by using the same option. One check needs the machine, not just the value:
:func:`check_listenable`, which the commands that listen run before they start anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import typer

#: The ports a server may listen on.
PORT_RANGE = (1, 65535)
#: Longer than any URL, token or name anyone types, shorter than what breaks an HTTP request.
MAX_TEXT = 2000
#: Kubernetes namespaces are DNS-1123 labels.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def shown(value: str) -> str:
    """``value`` quoted, cut short when long (a 100 kB argument is not echoed back whole)."""
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}… ({len(value)} characters)"


def _refuse(expected: str, value: str, hint: str | None = None) -> typer.BadParameter:
    import typer  # only when a value is refused: ``conveyor execute``'s quick path has no Typer

    text = f"expected {expected}, found {shown(value)}"
    return typer.BadParameter(f"{text}; {hint}" if hint else text)


RUN_ID_RULE = "a run id: letters, digits, '.', '_' and '-', at most 63, starting with a letter or digit"


def run_id(value: str | None) -> str | None:
    """The id of a recorded run: it names a folder, a URL path part and a Kubernetes label,
    so it follows :data:`conveyor.runlog.records.RUN_ID_PATTERN`."""
    if value is None or is_run_id(value):
        return value
    raise _refuse(RUN_ID_RULE, value, "list runs with: conveyor runs list")


def new_run_id(value: str | None) -> str | None:
    """The id to give a new run (``--run-id``): the same rule as :func:`run_id`."""
    if value is None or is_run_id(value):
        return value
    raise _refuse(RUN_ID_RULE, value)


TAG_RULE = "a tag: letters, digits and '_.:=+/@-', at most 100, not starting with a sign"


def tag(value: str | None) -> str | None:
    """A run's tag (``--tag``): what :data:`conveyor.runlog.records.TAG_PATTERN` allows, the
    rule the server checks a submission's tags by, so a bad one is refused before sending."""
    if value is None or is_tag(value):
        return value
    raise _refuse(TAG_RULE, value)


def is_tag(value: str) -> bool:
    """Whether ``value`` follows the tag rule (:data:`TAG_RULE`)."""
    from conveyor.runlog.records import TAG_PATTERN

    return re.fullmatch(TAG_PATTERN, value) is not None


def tags(values: list[str] | None) -> list[str] | None:
    """Repeated ``--tag`` options, each checked by :func:`tag`."""
    for value in values or []:
        tag(value)
    return values


def one_tag(values: list[str] | None) -> list[str] | None:
    """``--tag`` of a local run, checked by :func:`tag`: a local run keeps one tag, so a second
    is refused (it would silently replace the first)."""
    for value in values or []:
        tag(value)
    if values and len(values) > 1:
        hint = "give one, or tag a server run"
        raise _refuse("one --tag (a local run keeps one tag)", ", ".join(values), hint)
    return values


def is_run_id(value: str) -> bool:
    """Whether ``value`` follows the run id rule (:data:`RUN_ID_RULE`)."""
    from conveyor.runlog.records import RUN_ID_PATTERN

    return re.fullmatch(RUN_ID_PATTERN, value) is not None


def url(value: str | None) -> str | None:
    """An HTTP(S) URL, or ``host:port`` (the Argo CLI's spelling): checked here so that a
    typo is a message now, not an exception in the HTTP library later."""
    if value is None:
        return value
    if problem := url_problem(value):
        raise _refuse("an http:// or https:// URL (or host:port)", value, problem)
    return value


def url_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a server URL, or None."""
    if len(value) > MAX_TEXT or any(c.isspace() or not c.isprintable() for c in value):
        return "a URL has no spaces or control characters"
    full = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(full)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return f"the scheme is {parts.scheme!r}"
    host = parts.hostname or ""
    if not host:
        return "it names no host"
    if ":" not in host and not all(_HOST_LABEL.match(label) for label in host.rstrip(".").split(".")):
        return f"{host!r} is not a host name"
    return None


def token(value: str | None) -> str | None:
    """A bearer token: printable ASCII without spaces, as an HTTP header carries it."""
    if problem := token_problem(value):
        raise _refuse("a token of printable ASCII characters", str(value), problem)
    return value


def token_problem(value: str | None) -> str | None:
    """What is wrong with ``value`` as a bearer token, or None."""
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters"
    if not all(33 <= ord(c) < 127 for c in value):
        return "no spaces, control or non-ASCII characters"
    return None


def namespace(value: str | None) -> str | None:
    """A Kubernetes namespace (a DNS-1123 label)."""
    if value is None or _NAMESPACE.match(value):
        return value
    raise _refuse("a Kubernetes namespace: lower-case letters, digits and '-', at most 63", value)


def text(value: str | None) -> str | None:
    """A name or a filter (a user, a pipeline, a step path): printable, of a sensible length."""
    if value is None or (len(value) <= MAX_TEXT and value.isprintable()):
        return value
    raise _refuse(f"printable text of at most {MAX_TEXT} characters", value)


def host(value: str) -> str:
    """An address to listen on: an IP address, or a host name that can be looked up."""
    import ipaddress

    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    named = len(value) <= 253 and all(_HOST_LABEL.match(label) for label in labels)
    if named and not all(label.isdigit() for label in labels):  # 999.1.1.1 is no address
        return value
    raise _refuse("an IP address or a host name to listen on (127.0.0.1, 0.0.0.0, ::1, localhost)", value)


def port(value: int) -> int:
    """A TCP port to listen on."""
    low, high = PORT_RANGE
    if low <= value <= high:
        return value
    raise _refuse(f"a port from {low} to {high}", str(value))


def at_least(low: int) -> Callable[[int], int]:
    """A check that a count (of workers, say) is ``low`` or more."""

    def check(value: int) -> int:
        if value >= low:
            return value
        raise _refuse(f"a number, {low} or more", str(value))

    return check


def port_option(help: str) -> Any:
    """The ``--port`` option of every command that listens: one range, checked by the parser."""
    import typer

    low, high = PORT_RANGE
    return typer.Option("--port", callback=port, help=f"{help} ({low}-{high}).")


def check_listenable(host: str, port: int) -> None:
    """Refuse, before anything starts, an address this machine cannot listen on (a port in
    use, a host name that is not one of its own): the server would otherwise migrate, start
    its workers and only then fail to bind. Binding again just after is the server's own."""
    import socket

    from conveyor.errors import ConveyorError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConveyorError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
            "choose another --port, or a --host of this machine"
        ) from None
