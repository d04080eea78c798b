"""Bulk work holds the garbage collector back, and puts it back as it was, nested or not."""

from __future__ import annotations

import gc
import threading

from bot.core import collector
from bot.core.collector import BULK_THRESHOLD, START_THRESHOLD, bulk_work


def test_bulk_work_raises_the_threshold_and_puts_it_back_when_the_last_one_leaves() -> None:
    before = gc.get_threshold()
    with bulk_work():
        assert gc.get_threshold()[0] == BULK_THRESHOLD
        assert gc.get_freeze_count() > 0  # what existed before is set aside
        with bulk_work():
            assert gc.get_threshold()[0] == BULK_THRESHOLD
        assert gc.get_threshold()[0] == BULK_THRESHOLD  # the outer one is still working
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_overlapping_bulk_work_in_two_threads_restores_the_threshold() -> None:
    before = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with bulk_work():
            entered.set()
            release.wait(timeout=30)

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(timeout=30)
    with bulk_work():
        release.set()
        thread.join(timeout=30)
        assert gc.get_threshold()[0] == BULK_THRESHOLD  # the other left first: still held back
    assert gc.get_threshold() == before


def test_cyclic_garbage_made_during_bulk_work_is_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with bulk_work():
        for _ in range(3 * BULK_THRESHOLD):
            Node()
        alive = sum(1 for o in gc.get_objects() if type(o) is Node)
    assert alive < 2 * BULK_THRESHOLD  # collected as it went, not all held until the end


def test_a_start_held_back_ends_with_what_was_loaded_set_aside_and_the_threshold_back() -> None:
    before = gc.get_threshold()
    try:
        collector.held_back_while_starting()
        assert gc.get_threshold() == (START_THRESHOLD, before[1], before[2])
        loaded = [object() for _ in range(3)] + [{} for _ in range(1000)]
        collector.started()
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() >= len(loaded)  # not walked again by any collection
        frozen = gc.get_freeze_count()
        collector.started()  # a second runtime opened: nothing more to do
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_without_a_start_held_back_opening_a_runtime_leaves_the_collector_alone() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    collector.started()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_a_start_ending_during_bulk_work_lets_the_bulk_work_put_back_the_threshold() -> None:
    before = gc.get_threshold()
    try:
        collector.held_back_while_starting()
        with bulk_work():
            collector.started()
            assert gc.get_threshold()[0] == BULK_THRESHOLD  # the bulk work's, until it ends
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_start_held_back_during_bulk_work_changes_nothing() -> None:
    before = gc.get_threshold()
    with bulk_work():
        collector.held_back_while_starting()
        assert gc.get_threshold()[0] == BULK_THRESHOLD
        collector.started()
        assert gc.get_threshold()[0] == BULK_THRESHOLD
    assert gc.get_threshold() == before
