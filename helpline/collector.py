"""The garbage collector while ``helpline run`` serves: what was loaded at start is frozen
(``settled_garbage_collector``), and what is made later to live long (the directory's
places and ranking index) can join it (``settle_long_lived``). Imports nothing of
helpline, so that features may use it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000
_settled = 0  # how many settled_garbage_collector blocks are open


@contextmanager
def settled_garbage_collector() -> Iterator[None]:
    """While serving, once everything is loaded: the flows, catalogues and libraries go to
    the collector's permanent generation, and young collections run less often. Under load
    CPython's defaults spent about 15% of the bot's time collecting (1.5 s per 10,000
    messages, mostly walking the same long-lived objects again); with this, 0.2 s
    (bench/README.md). Reference cycles are still collected, a little later."""
    global _settled
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    _settled += 1
    try:
        yield
    finally:
        _settled -= 1
        gc.set_threshold(*before)
        gc.unfreeze()


def settle_long_lived() -> None:
    """While serving settled, everything tracked now goes out of the collector's reach:
    call it right after making what lives until the next change (the directory's places
    and index: at 300,000 services each full collection walked their 40,000 sets, lists
    and dicts again, holding the event loop 22-25 ms; bench/README.md). It collects
    nothing and takes no time (``gc.freeze`` joins lists; ``gc.get_freeze_count`` would
    walk them all, 10 ms and more). What is frozen is still freed when nothing refers to
    it (the places and the index hold no reference cycles); what is in a reference cycle
    and garbage, or becomes so later (objects of turns under way at that moment), stays
    until the process ends: a little, once per change of the directory."""
    if _settled:
        gc.freeze()
