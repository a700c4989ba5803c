"""The node runner's process settings."""

from __future__ import annotations

import gc

from juki_gateway.gateway.jukinet.run import GC_GEN0_THRESHOLD, tune_gc


def test_tune_gc_freezes_start_up_objects_and_raises_the_first_threshold() -> None:
    """After tune_gc the objects alive at start-up are frozen and the first generation is
    collected every GC_GEN0_THRESHOLD allocations (the other thresholds are kept)."""
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
