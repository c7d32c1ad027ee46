"""Two branches that run at the same time and each return their own value."""

import time


def slow_double(x: int) -> int:
    time.sleep(0.2)
    return x * 2


def slow_square(x: int) -> int:
    time.sleep(0.2)
    return x * x


def combine(doubled: int, squared: int) -> int:
    return doubled + squared
