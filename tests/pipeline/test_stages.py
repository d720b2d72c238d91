"""Stages joined by bounded channels never hang once one side has stopped; a pool of
workers hands results back in order."""

import threading
import time

import pytest

from pipeline.stages import END, Channel, End, OrderedPool, StageStopped, StageThread


class GaveUpError(Exception):
    pass


def test_a_channel_must_be_bounded():
    with pytest.raises(ValueError, match="bounded"):
        Channel[int](threading.Event(), 0)


def test_items_arrive_in_order_then_the_end_marker():
    stop = threading.Event()
    channel = Channel[int](stop, 2)

    def produce() -> None:
        for number in range(5):
            channel.put(number)
        channel.put(END)

    producer = StageThread("test-producer", stop, produce)
    producer.start()
    received = []
    while not isinstance(item := channel.get(), End):
        received.append(item)
    producer.join_and_raise()
    assert received == [0, 1, 2, 3, 4]


def test_a_producer_blocked_on_a_full_channel_is_released_by_stop():
    stop = threading.Event()
    channel = Channel[int](stop, 1)
    channel.put(1)  # full now; the next put waits

    producer = StageThread("test-producer", stop, lambda: channel.put(2))
    producer.start()
    stop.set()
    producer.join(timeout=5)
    assert not producer.is_alive()
    assert producer.failure is None  # being stopped is not a failure of its own


def test_a_waiting_consumer_can_give_up_while_nothing_arrives():
    channel = Channel[int](threading.Event(), 1)

    def give_up() -> None:
        raise GaveUpError

    with pytest.raises(GaveUpError):
        channel.get(while_waiting=give_up)


def test_a_failing_stage_stops_the_others_and_hands_its_error_over():
    stop = threading.Event()
    channel = Channel[int](stop, 1)

    def fail() -> None:
        raise GaveUpError("decoder broke")

    failing = StageThread("test-failing", stop, fail)
    failing.start()
    with pytest.raises(StageStopped):
        channel.get()  # would wait forever without the stop event
    with pytest.raises(GaveUpError, match="decoder broke"):
        failing.join_and_raise()


# --- OrderedPool ----------------------------------------------------------------------------


def test_a_pool_hands_results_back_in_order_however_they_finish():
    running = 0
    most = 0
    lock = threading.Lock()

    def slow_for_even(number: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.03 if number % 2 == 0 else 0.001)  # later items finish first
        with lock:
            running -= 1
        return number * 10

    pool = OrderedPool[int, int]("test-pool", slow_for_even, 2)
    try:
        results = [result for number in range(8) for result in pool.submit(number)]
        results += pool.drain()
    finally:
        pool.close()
    assert results == [number * 10 for number in range(8)]
    assert most == 2  # two at once, never more than the workers
    assert not [t for t in threading.enumerate() if t.name.startswith("test-pool")]


def test_a_pool_raises_a_failure_when_its_item_is_due_and_close_cancels_the_rest():
    started: list[int] = []

    def fail_on_two(number: int) -> int:
        started.append(number)
        if number == 2:
            raise GaveUpError(f"item {number}")
        time.sleep(0.02)
        return number

    pool = OrderedPool[int, int]("test-pool", fail_on_two, 2)
    handed: list[int] = []
    with pytest.raises(GaveUpError, match="item 2"):
        try:
            for number in range(50):
                handed += pool.submit(number)
            handed += pool.drain()
        finally:
            pool.close()
    assert handed == [0, 1]
    assert len(started) < 50  # what had not started was cancelled, not run
    assert not [t for t in threading.enumerate() if t.name.startswith("test-pool")]


def test_a_pool_of_one_runs_on_the_callers_thread():
    pool = OrderedPool[int, str]("test-pool", lambda _n: threading.current_thread().name, 1)
    assert pool.submit(1) == [threading.current_thread().name]
    assert pool.drain() == []
    pool.close()
    with pytest.raises(ValueError, match="at least one worker"):
        OrderedPool[int, int]("test-pool", lambda n: n, 0)
