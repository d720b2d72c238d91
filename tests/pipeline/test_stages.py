"""Stages joined by bounded channels never hang once one side has stopped."""

import threading

import pytest

from pipeline.stages import END, Channel, End, StageStopped, StageThread


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
