"""Threads joined by bounded channels that all stop when one of them fails.

A producer blocked on a full channel or a consumer waiting on an empty one would hang
forever once its partner has died; here every wait polls a shared stop event, so setting
it (on an error, a cancellation or an interrupt) lets every stage return promptly and be
joined. The bound on each channel is what keeps memory flat in the length of a video.
"""

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


In = TypeVar("In")
Out = TypeVar("Out")


class OrderedPool(Generic[In, Out]):
    """Runs ``work`` on up to ``workers`` threads at once and hands results back in order.

    ``submit`` returns the results that are due (the oldest, once ``workers`` + 1 items are
    in flight), ``drain`` the rest; a failure is raised from the call that returns its item.
    With one worker, ``work`` runs on the caller's thread: no hop, no pool. Always ``close``
    it: that cancels what has not started and joins the threads.
    """

    def __init__(self, name: str, work: Callable[[In], Out], workers: int) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._work = work
        self._workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name) if workers > 1 else None
        self._pending: deque[Future[Out]] = deque()

    def submit(self, item: In) -> list[Out]:
        if self._pool is None:
            return [self._work(item)]
        self._pending.append(self._pool.submit(self._work, item))
        # One more than the workers in flight, so a worker is never idle while the caller
        # hands the oldest result on.
        return [self._pending.popleft().result()] if len(self._pending) > self._workers else []

    def drain(self) -> list[Out]:
        done = []
        while self._pending:
            done.append(self._pending.popleft().result())
        return done

    def close(self) -> None:
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
