"""Task functions used by the test pipelines (importable by name, also in child processes)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def noop() -> None:
    return None


def add(a: int, b: int) -> int:
    return a + b


def numbers(n: int) -> list[int]:
    return list(range(n))


def square(x: int) -> int:
    return x * x


def fail_always(message: str = "boom") -> None:
    raise RuntimeError(message)


def record(counter: str, tag: str) -> str:
    """Append ``tag`` to the counter file: the side effect that resume must not repeat."""
    with open(counter, "a") as handle:
        handle.write(tag + "\n")
    return tag


def record_item(counter: str, x: Any) -> Any:
    record(counter, f"item-{x}")
    return x


def die_once(kill_marker: str, counter: str) -> None:
    """Kill this whole process with SIGKILL the first time; succeed afterwards."""
    if not Path(kill_marker).exists():
        Path(kill_marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    record(counter, "die")


def die_at(marker: str, counter: str, x: int, at: int) -> int:
    if x == at and not Path(marker).exists():
        Path(marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    record(counter, f"item-{x}")
    return x


def cut_at(log: str, x: int, at: int, pause: float, spend: float) -> int:
    """Item ``x`` of a power-cut test: take ``spend`` seconds, note when it returns (in
    ``log``, off the device under test); item ``at`` waits ``pause`` seconds, then kills
    this process (the "power cut")."""
    if x == at:
        time.sleep(pause)
        with open(log, "a") as handle:
            handle.write(f"cut {time.time()!r}\n")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(spend)
    with open(log, "a") as handle:
        handle.write(f"{x} {time.time()!r}\n")
    return x


def flaky(counter: str, fail_times: int) -> str:
    calls = len(Path(counter).read_text().splitlines()) if Path(counter).exists() else 0
    record(counter, "call")
    if calls < fail_times:
        raise ValueError(f"flaky failure {calls + 1}")
    return "ok"


def fail_if(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x


_active = 0
_peak = 0
_lock = threading.Lock()


def tracked(x: int, hold: float = 0.05) -> int:
    """Sleep while counting how many run at once (in this process)."""
    global _active, _peak
    with _lock:
        _active += 1
        _peak = max(_peak, _active)
    time.sleep(hold)
    with _lock:
        _active -= 1
    return x


def peak() -> int:
    global _peak
    value, _peak = _peak, 0
    return value


def report_peak() -> int:
    return peak()


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def shout(word: str) -> str:
    print(f"stdout says {word}")
    print(f"stderr says {word}", file=sys.stderr)
    return word.upper()


def pid() -> int:
    return os.getpid()


def uses_secret() -> int:
    value = os.environ.get("API_KEY", "")
    print(f"the key is {value}", flush=True)
    os.system('echo "child says $API_KEY"')
    return len(value)


def leak_secret() -> str:
    return f"token-{os.environ['API_KEY']}"


def peek_environment() -> str | None:
    return os.environ.get("API_KEY")


def print_in_pieces() -> None:
    value = os.environ["PEM_KEY"]
    sys.stdout.write("before ")
    for i in range(0, len(value), 7):
        sys.stdout.write(value[i : i + 7])
        sys.stdout.flush()
    sys.stdout.write(" after\n")


class Box:
    def __init__(self, value: int) -> None:
        self.value = value


def make_box(value: int) -> Box:
    return Box(value)


def open_box(box: Box) -> int:
    assert isinstance(box, Box)
    return box.value


class Settings(BaseModel):
    name: str
    size: int


def use_settings(settings: Settings, factor: float) -> float:
    assert isinstance(settings, Settings)
    return settings.size * factor


def two_values() -> tuple[int, str]:
    return 1, "one"


def concat(values: list[Any]) -> str:
    return ",".join(str(v) for v in values)


def count_files(files: list[str], counter: str) -> int:
    """A partition's work: note each file, return how many there were."""
    with open(counter, "a") as handle:
        for name in files:
            handle.write(Path(name).name + "\n")
    return len(files)


def fail_on(files: list[str], bad: str, counter: str) -> int:
    if any(Path(f).name == bad for f in files):
        raise ValueError(f"{bad} is in this partition")
    return count_files(files, counter)


def slow_item(x: int, counter: str) -> int:
    record(counter, f"start-{x}")
    time.sleep(0.4)
    return x


def deep() -> list[Any]:
    """A value nested 500 levels deep (too deep to keep as JSON)."""
    value: list[Any] = []
    for _ in range(500):
        value = [value]
    return value


def print_at_fds() -> None:
    print("from python", flush=True)
    os.system('echo from a child; echo "from a child\'s stderr" >&2')
    os.write(1, b"from the raw fd\n")


def open_box_once(box: Box, marker: str) -> int:
    """Fails the first time (leaving a marker), then opens the box."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first time")
    return box.value


def try_to_escape(server_db: str, other_run: str, server_data: str, pg_port: int) -> dict[str, str]:
    """What a hostile step tries on a shared server; each attempt's outcome, as text."""
    import socket

    outcome: dict[str, str] = {}
    leaks = [
        k
        for k, v in os.environ.items()
        if k.startswith("CONVEYOR_SERVER") or "sqlite:" in v or "postgresql" in v
    ]
    outcome["environment"] = ",".join(sorted(leaks)) or "clean"
    for name, path in (("database_file", server_db), ("other_run", other_run), ("server_data", server_data)):
        try:
            outcome[name] = f"read {len(Path(path).read_bytes())} bytes"
        except OSError as exc:
            outcome[name] = f"refused: {type(exc).__name__}"
    try:
        with socket.create_connection(("127.0.0.1", pg_port), timeout=2):
            outcome["database_port"] = "connected"
    except OSError as exc:
        outcome["database_port"] = f"refused: {type(exc).__name__}"
    Path("mine.txt").write_text("own work directory is writable")
    outcome["own"] = Path("mine.txt").read_text()
    return outcome


def index_seen(i: int, seen: list[int]) -> tuple[int, list[int]]:
    """Returns a value named like the loop's index (as runnable's max_iterations example
    does) beside the indices seen so far."""
    return i * 10, [*seen, i]


def loop_body(total: int, i: int, stop_at: int) -> tuple[int, bool]:
    """One loop iteration: the index arrives as a parameter and as the environment variable
    ``i`` (they must agree); stops the loop once ``i`` reaches ``stop_at``."""
    index_as = "i"  # the loop's index_as, as a runnable function reads it
    if os.environ.get(index_as) != str(i):
        raise AssertionError(f"env i={os.environ.get(index_as)!r} but parameter i={i}")
    return total + i, i >= stop_at


def fail_once_at(i: int, fail_at: int, marker: str) -> None:
    """Fails the first time it runs in iteration ``fail_at`` (a marker file remembers)."""
    if i == fail_at and not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise RuntimeError(f"iteration {i} fails once")


def ticker(lines: int, pause: float) -> int:
    """Prints a numbered line every ``pause`` seconds: output to follow while it runs."""
    for n in range(lines):
        print(f"tick {n}", flush=True)
        time.sleep(pause)
    return lines


def scored(x: int) -> float:
    """A metric that differs from run to run (x comes from the parameters)."""
    return x * 1.5


def run_inner(n: int) -> list[int]:
    """Run a pipeline of its own from inside a step: on purpose, not by an import."""
    from conveyor import Pipeline, PythonTask

    inner = Pipeline(steps=[PythonTask(numbers, returns=["xs"])], name="inner")
    xs: list[int] = inner.execute(parameters={"n": n}).parameters["xs"]
    return xs
