"""Following a job: which reports are news, and a one-line text progress bar."""

import sys
from typing import TextIO

from enclave_client._models import Job

BAR_WIDTH = 30


def is_news(previous: Job | None, current: Job) -> bool:
    """Whether ``current`` says something ``previous`` did not (state, stage or progress)."""
    if previous is None:
        return True
    return (previous.state, previous.stage, previous.progress) != (
        current.state,
        current.stage,
        current.progress,
    )


class ProgressBar:
    """``[#########.....]  45% running: swap`` redrawn in place; a newline when done."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._width = 0

    def update(self, job: Job) -> None:
        filled = round(BAR_WIDTH * job.progress)
        stage = f": {job.stage}" if job.stage and not job.is_terminal else ""
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {job.progress:4.0%} {job.state}{stage}"
        )
        # pad over a longer previous line, since the line is redrawn in place
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        if job.is_terminal:
            self._stream.write("\n")
        self._stream.flush()


def bar_for(progress_bar: bool | TextIO) -> ProgressBar | None:
    """``wait``'s ``progress_bar`` argument: off, on stderr (``True``), or on a stream."""
    if progress_bar is False:
        return None
    return ProgressBar(None if progress_bar is True else progress_bar)
