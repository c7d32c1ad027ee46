"""Entry point of a task run in its own process (local executor, ``isolation: process``).

Usage: ``python -m conveyor.step.child REQUEST RESULT``. Both files are pickles made by the
parent executor, which also captures this process's output.
"""

from __future__ import annotations

import os
import pickle
import sys


def main(argv: list[str]) -> int:
    """Run the pickled request and write the pickled result (``isolation: process``)."""
    request_file, result_file = argv
    from conveyor.step.commands import run_guarded, running
    from conveyor.step.request import CommandResult

    with running():  # for the whole process: unpickling the request may import the user's modules
        with open(request_file, "rb") as handle:
            request = pickle.load(handle)
        sys.path.insert(0, os.getcwd())
        result = run_guarded(request)
    sys.stdout.flush()
    try:
        payload = pickle.dumps(result)
    except Exception as exc:
        payload = pickle.dumps(CommandResult(error=f"the step's results cannot be pickled: {exc}"))
    tmp = result_file + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, result_file)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
