"""Worker scratch directories: private, named after the process that removes them, and
swept once that process is gone.

A worker keeps a running job's files (its inputs are faces) in its scratch directory and
empties it after every job. A process killed mid-job cannot, so each new scratch
directory first sweeps away those of this user whose owner process no longer exists.
"""

import os
import shutil
import stat
import tempfile
from pathlib import Path

PREFIX = "enclave-worker-"


def make_scratch_dir() -> Path:
    """A new private (mode 700) scratch directory owned by this process."""
    sweep_abandoned()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def sweep_abandoned(temp_dir: Path | None = None) -> list[Path]:
    """Remove this user's scratch directories whose owner process has ended."""
    removed = []
    for path in Path(temp_dir or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = _owner_pid(path.name)
        if owner is None or _is_running(owner):
            continue
        try:
            status = path.lstat()
        except OSError:
            continue
        # Not a symlink, and ours: /tmp is shared, a planted name must lead nowhere.
        if stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _owner_pid(name: str) -> int | None:
    owner, dash, _ = name.removeprefix(PREFIX).partition("-")
    return int(owner) if dash and owner.isdigit() else None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    except OverflowError:
        return False  # not a pid at all
    return True
