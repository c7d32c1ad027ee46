"""Steps of the mocked example. Under the mocked executor none of them runs: each would
leave a file behind if it did, which the example's test checks."""

from pathlib import Path


def _ran(name: str) -> None:
    Path(f"ran-{name}").write_text("this step ran\n")


def download(source: str) -> list[str]:
    """Fetch the day's files (slow, and needs the network: what a topology test avoids)."""
    _ran("download")
    return [f"{source}/part-{i}.csv" for i in range(100)]


def use_cache() -> list[str]:
    """When the download fails: yesterday's files."""
    _ran("use_cache")
    return ["cache/part-0.csv"]


def process(file: str) -> int:
    _ran("process")
    return len(file)


def publish(sizes: list[int]) -> None:
    _ran("publish")
    print(f"published {len(sizes)} results")
