"""Start-up without the cyclic garbage collector, for the commands that run a pipeline here.

Start-up (importing conveyor, pydantic and PyYAML, building the validators, reading and
checking the pipeline) makes some 50,000 objects that live as long as the process: modules,
classes, functions, validators. The collector, left on, walks them over and over while they
are being made, finds next to nothing to free, and walks them all once more when the
interpreter exits. Paused for start-up, and with what start-up made then moved out of its
sight (``gc.freeze``), a 50-step chain's process takes about a tenth less CPU; the run itself
(the user's code, the engine's objects) is collected as always, and each of its full
collections no longer walks start-up's objects either.

What start-up left as garbage (a few hundred objects) is kept, not freed: its memory is the
price of not paying for a full collection to find it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Start-up's block: the collector off while it runs; after it (even when it raised),
    everything alive frozen and the collector on again. A caller that turned the collector
    off itself (an embedding program) keeps it as it set it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
