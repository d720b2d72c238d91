"""Threads joined by bounded channels that all stop when one of them fails.

A producer blocked on a full channel or a consumer waiting on an empty one would hang
forever once its partner has died; here every wait polls a shared stop event, so setting
it (on an error, a cancellation or an interrupt) lets every stage return promptly and be
joined. The bound on each channel is what keeps memory flat in the length of a video.
"""

import queue
import threading
from collections.abc import Callable
from typing import Final, Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.05
_IDLE_CALL_SECONDS = 0.5


class End:
    """The marker a producer puts last; typed apart from any payload."""

    def __repr__(self) -> str:
        return "END"


END: Final = End()
"""The one :class:`End` instance; test with ``isinstance(item, End)``."""


class StageStopped(Exception):  # noqa: N818 - a signal between threads, not a failure
    """Raised inside a stage when another stage stopped the run."""


class Channel(Generic[T]):
    """A bounded FIFO between two stages; waits give up once ``stop`` is set."""

    def __init__(self, stop: threading.Event, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a channel must be bounded (maxsize >= 1)")
        self._stop = stop
        self._queue: queue.Queue[T | End] = queue.Queue(maxsize)

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    def put(self, item: T | End) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return
        raise StageStopped

    def get(self, while_waiting: Callable[[], None] | None = None) -> T | End:
        """The next item; ``while_waiting`` runs about every half second spent waiting."""
        waited = 0.0
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                waited += _POLL_SECONDS
            if while_waiting is not None and waited >= _IDLE_CALL_SECONDS:
                waited = 0.0
                while_waiting()
        raise StageStopped


class StageThread(threading.Thread):
    """Runs one stage; a failure is kept for the caller and stops every other stage."""

    def __init__(self, name: str, stop: threading.Event, work: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = stop
        self._work = work
        self.result: object = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._work()
        except StageStopped:
            pass  # another stage failed or the caller gave up; that one reports why
        except BaseException as error:  # handed to the caller's thread by raise_failure
            self.failure = error
            self._stop_event.set()

    def wait(self) -> None:
        """Join the thread if it was ever started."""
        if self.ident is not None:
            self.join()

    def join_and_raise(self) -> None:
        """Wait for the stage to end and re-raise its failure in the caller's thread."""
        self.wait()
        self.raise_failure()

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure
