"""A power cut, not only a killed process: what each ``durability`` leaves on the device.

The run log (the ``file`` store's folder, the ``sqlite`` store's database, or a PostgreSQL
cluster's data folder, its server running through the cut) lives on an ext4 file system on
a loop device. A map runs its items one at a time; an item kills the whole process
(SIGKILL) right after the previous items were reported done, and at that instant the loop device's backing file is copied: the copy is
what the "disk" had received, and nothing the kernel still held in its page cache for the
file system above (written but never synced). The copy is then mounted on a second loop
device, which replays ext4's journal as a reboot would, and the store is read from it (SQLite
and PostgreSQL recovering from their WAL, as on a restart).

- ``strict``: every item reported done before the cut is on the device;
- ``relaxed``: items the live file system shows as recorded are missing from the device
  (proof that this test sees unsynced data as lost, so that strict's pass means something);
- ``batched``: what is missing ended within the last few milliseconds before the cut.

The file system is mounted with ``commit=600`` so that ext4's own journal timer (5 s by
default) does not sync for the run; the kernel's writeback of dirty pages starts after 30 s
(``vm.dirty_expire_centisecs``), far beyond the test. This models a drive that keeps what
it was sent (a write cache that survives power, or none); ``fsync`` is what puts data there.
Needs root, loop devices, ext4 and ``mkfs.ext4`` (and PostgreSQL's ``initdb`` and ``pg_ctl``
for its case): elsewhere it skips (and fails in CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.codec import fold_lines
from conveyor.runlog.records import Status
from conveyor.runlog.sql import SQLRunLogStore
from support import TASKS, need_service, run_cli
from support.services import Postgres

pytestmark = pytest.mark.powercut

#: Items of the map; the cut comes when item ``AT`` starts, after items 0 .. AT-1 ended.
ITEMS, AT = 40, 30
#: Seconds each item takes: the items before the cut end over 300 ms, many batched windows.
SPEND = 0.01
#: ``batched``: an item that returned this long before the cut must be on the device (the
#: writer's 10 ms window, the fsync of a loop device, and a loaded 2-core machine).
BATCHED_LAG = 0.1

#: Every store that keeps its runs on a disk (PostgreSQL: a cluster on the device, its server
#: left running through the cut, started again on the copy).
STORES = ["file", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
#: PostgreSQL's WAL writer flushes what asynchronous commits left every ``wal_writer_delay``
#: (200 ms by default): 10 s here, so that what ``relaxed`` leaves unflushed is seen lost.
PG_SETTINGS = ["wal_writer_delay=10s", "checkpoint_timeout=1h", "max_wal_size=1GB"]

PIPELINE = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 1
      branch:
        start_at: item
        steps:
          item: {command: ctasks.cut_at, returns: [y], next: success}
      next: success
"""


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _why_not() -> str | None:
    """Why this machine cannot make and mount a loop device, or None if it can."""
    if os.geteuid() != 0:
        return "making a loop device needs root"
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    if not Path("/dev/loop-control").exists():
        return "the kernel has no loop devices (/dev/loop-control)"
    if "ext4" not in Path("/proc/filesystems").read_text():
        return "the kernel has no ext4"
    return None


class Device:
    """An ext4 file system in ``image``, on a loop device, mounted at ``mount``."""

    def __init__(self, image: Path, mount: Path, options: str = "commit=600") -> None:
        self.image, self.mount = image, mount
        mount.mkdir(parents=True, exist_ok=True)
        out = _run("losetup", "--find", "--show", str(image))
        if out.returncode:
            need_service("powercut", f"losetup failed: {out.stderr.strip()}")
        self.loop = out.stdout.strip()
        out = _run("mount", "-t", "ext4", "-o", options, self.loop, str(mount))
        if out.returncode:
            _run("losetup", "-d", self.loop)
            need_service("powercut", f"mounting a loop device failed: {out.stderr.strip()}")

    def close(self) -> None:
        _run("umount", str(self.mount))
        _run("losetup", "-d", self.loop)


@pytest.fixture
def device() -> Iterator[Device]:
    """A fresh ext4 on a loop device, in a folder of /tmp that PostgreSQL's user can reach
    (pytest's own folders are the test user's alone)."""
    why = _why_not()
    if why:
        need_service("powercut", why)
    place = Path(tempfile.mkdtemp(prefix="conveyor-cut-", dir="/tmp"))
    place.chmod(0o755)
    image = place / "disk.img"
    with open(image, "wb") as handle:
        handle.truncate(256 * 1024 * 1024)  # sparse: PostgreSQL's cluster takes about 60 MB
    out = _run("mkfs.ext4", "-q", "-F", str(image))
    if out.returncode:
        shutil.rmtree(place, ignore_errors=True)
        need_service("powercut", f"mkfs.ext4 failed: {out.stderr.strip()}")
    made = Device(image, place / "live")
    made.mount.chmod(0o755)
    yield made
    made.close()
    shutil.rmtree(place, ignore_errors=True)


def _succeeded(steps: dict[tuple[str, ...], Any]) -> set[int]:
    return {int(k[1]) for k, r in steps.items() if len(k) == 3 and r.status is Status.SUCCEEDED}


def _items(root: Path, store: str) -> set[int]:
    """The map items whose success the ``store`` under ``root`` (the device's mount)
    recorded, read as a restart would: SQLite recovers its WAL, PostgreSQL replays its own
    (a cluster started on the folder, and stopped)."""
    if store == "file":
        events = root / "runs" / "cut" / "events.jsonl"
        if not events.exists():
            return set()
        with open(events, "rb") as handle:
            return _succeeded(fold_lines(handle)[0])
    if store == "sqlite":
        if not (root / "runs.db").exists():
            return set()
        with contextlib.closing(sqlite3.connect(root / "runs.db")) as db:
            try:
                rows = db.execute("SELECT data FROM events WHERE run_id = 'cut' ORDER BY seq").fetchall()
            except sqlite3.OperationalError:  # no table yet: the schema did not reach the disk
                return set()
        return _succeeded(fold_lines(r[0] for r in rows)[0])
    cluster = Postgres(fsync=True, base=root / "pg", settings=PG_SETTINGS)
    # The copy holds the lock file of the server that was running; after a real cut no
    # process would be left to hold it.
    (cluster.data / "postmaster.pid").unlink(missing_ok=True)
    try:
        cluster.start(init=False)
    except RuntimeError as exc:
        raise AssertionError(f"PostgreSQL did not start again after the cut: {exc}") from None
    try:
        return _postgres_items(cluster.url)
    finally:
        cluster.stop(remove=False)


def _postgres_items(url: str) -> set[int]:
    store = SQLRunLogStore(url, create=False)
    try:
        return _succeeded(store.load("cut").steps)
    except RunNotFoundError:
        return set()
    finally:
        store.close()


def _cut_run(
    device: Device, tmp_path: Path, store: str, durability: str, pause: float
) -> tuple[set[int], set[int], dict[int, float], float]:
    """Run the map on ``device`` until the cut; return the items recorded on the device
    (after the cut and a journal replay), those the live store shows, when each item
    returned and when the cut came."""
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "returned.log"  # off the device: it must survive the cut
    (work / "pipeline.yaml").write_text(PIPELINE)
    (work / "params.yaml").write_text(
        f"log: {log}\nat: {AT}\npause: {pause}\nspend: {SPEND}\nxs: {list(range(ITEMS))}\n"
    )
    cluster = None
    if store == "postgres":
        cluster = Postgres(fsync=True, base=device.mount / "pg", settings=PG_SETTINGS)
        try:
            cluster.start()
        except RuntimeError as exc:
            need_service("postgres", f"PostgreSQL could not start on the loop device: {exc}")
        SQLRunLogStore(cluster.url).close()  # its tables, made before the run
        where = f"url: '{cluster.url}'"
    else:
        where = f"path: {device.mount / ('runs' if store == 'file' else 'runs.db')}"
    (work / "config.yaml").write_text(
        f"run_log_store: {{type: {store}, config: {{{where}, durability: {durability}}}}}\n"
    )
    env = {"PYTHONPATH": str(TASKS) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "cut"]
    try:
        killed = run_cli("execute", "-q", *args, cwd=work, env=env)
        # The power goes: what the device received is the backing file, copied now.
        snapshot = device.image.with_name("after-cut.img")
        assert _run("cp", "--sparse=always", str(device.image), str(snapshot)).returncode == 0
        assert killed.returncode == -9, killed.stdout + killed.stderr
        live = _postgres_items(cluster.url) if cluster else _items(device.mount, store)
    finally:
        if cluster is not None:
            cluster.stop(remove=False)
    rebooted = Device(snapshot, device.image.with_name("rebooted"), options="errors=remount-ro")
    try:
        on_disk = _items(rebooted.mount, store)
    finally:
        rebooted.close()
    returned: dict[int, float] = {}
    cut = 0.0
    for line in log.read_text().splitlines():
        name, at = line.split()
        if name == "cut":
            cut = float(at)
        else:
            returned[int(name)] = float(at)
    assert set(returned) == set(range(AT)) and cut, log.read_text()
    return on_disk, live, returned, cut


@pytest.mark.parametrize("store", STORES)
def test_strict_keeps_every_event_reported_before_a_power_cut(
    device: Device, tmp_path: Path, store: str
) -> None:
    """The cut comes as the next item starts: right after the last one was reported done."""
    on_disk, live, _, _ = _cut_run(device, tmp_path, store, "strict", pause=0.0)
    assert live == set(range(AT))
    assert on_disk == set(range(AT)), f"lost to the cut: {sorted(live - on_disk)}"


@pytest.mark.parametrize("store", STORES)
def test_relaxed_loses_what_the_os_had_not_written(device: Device, tmp_path: Path, store: str) -> None:
    """The same cut as strict's, after the relaxed writer wrote every group (the live file
    system shows them all): what was never synced is not on the device. Were this test
    blind to the page cache, this would fail."""
    on_disk, live, _, _ = _cut_run(device, tmp_path, store, "relaxed", pause=0.3)
    assert live == set(range(AT)), "relaxed writes each group within 50 ms"
    assert on_disk < live, f"relaxed lost nothing to the cut: {sorted(on_disk)}"


@pytest.mark.parametrize("store", STORES)
def test_batched_loses_at_most_the_last_few_milliseconds(device: Device, tmp_path: Path, store: str) -> None:
    on_disk, live, returned, cut = _cut_run(device, tmp_path, store, "batched", pause=0.0)
    assert live == set(range(AT)), "batched writes each event before the step goes on"
    lost = live - on_disk
    assert on_disk <= live and on_disk == set(range(len(on_disk))), "what is kept is a prefix"
    late = {x: round(cut - returned[x], 4) for x in lost}
    assert all(age < BATCHED_LAG for age in late.values()), f"lost, seconds before the cut: {late}"
    assert len(on_disk) >= AT / 2, "the items of the first 150 ms at least are on the device"
