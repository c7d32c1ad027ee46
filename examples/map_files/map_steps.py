"""Write some files, process each in a map iteration through the catalog, then sum up.

Everything is written under out/ (git-ignored), so running it from the repository's root
leaves the repository clean."""

from pathlib import Path


def make_files(count: int = 5) -> list[str]:
    Path("out/data").mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        path = Path("out/data") / f"part-{i}.csv"
        path.write_text("\n".join(str(i * 10 + j) for j in range(i + 1)) + "\n")
        names.append(path.name)
    return names


def process(file: str) -> int:
    rows = [int(line) for line in (Path("out/data") / file).read_text().splitlines() if line]
    Path("out/sums").mkdir(parents=True, exist_ok=True)
    (Path("out/sums") / f"{file}.sum").write_text(str(sum(rows)))
    return len(rows)


def total(rows: list[int]) -> int:
    return sum(rows)
