"""The garbage collector while ``helpline run`` serves: what was loaded at start is frozen
(``runtime.settled_garbage_collector``), and what is made later to live long (the
directory's places and ranking index) can join it (``settle_long_lived``). Imports
nothing of helpline, so that features may use it."""

from __future__ import annotations

import gc

_settled = 0  # how many settled_garbage_collector blocks are open


def settled(entering: bool) -> None:
    """Called by ``runtime.settled_garbage_collector`` as it starts and ends."""
    global _settled
    _settled = max(0, _settled + (1 if entering else -1))


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
