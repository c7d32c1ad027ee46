"""Pick a branch by the value of a parameter."""


def measure(size: int) -> str:
    return "large" if size > 100 else "small"


def big_job(size: int) -> str:
    return f"split {size} into chunks"


def small_job(size: int) -> str:
    return f"process {size} at once"
