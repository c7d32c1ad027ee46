"""A step that fails, and the clean-up path that handles its failure."""


def extract(source: str = "missing.csv") -> int:
    raise FileNotFoundError(f"{source} is not there")


def cleanup() -> str:
    print("cleaning up after the failed extract")
    return "cleaned"
