"""What ``helpline run`` sets up around serving that the other tests do not see."""

from __future__ import annotations

import gc

from helpline.collector import GC_YOUNG_THRESHOLD, settled_garbage_collector


def test_serving_freezes_what_is_loaded_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    loaded = [object() for _ in range(10)]  # stands for the flows, catalogues, libraries
    with settled_garbage_collector():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() >= len(loaded)
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # cycles made while serving are still collected
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
