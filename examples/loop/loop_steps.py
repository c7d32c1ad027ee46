"""Steps of the loop example: poll until the data is ready, at most five times."""

import os


def start() -> int:
    """The loop's starting point: nothing is ready yet."""
    return 0


def poll(ready: int) -> tuple[int, bool]:
    """One polling round. The round number comes from the loop as the environment variable
    ``ROUND`` (its ``index_as``, as runnable passes it); readiness carries from round to round."""
    round_number = int(os.environ["ROUND"])
    ready += 1
    print(f"round {round_number}: {ready} of 3 parts ready")
    return ready, ready >= 3


def report(ready: int, done: bool) -> None:
    """After the loop: the last round's parameters are the pipeline's."""
    print(f"{ready} parts ready; done: {done}")
