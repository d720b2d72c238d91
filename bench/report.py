"""How every bench prints: a header with the machine, an aligned table, then the ratio line."""

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path


def machine() -> str:
    """CPU model and core count, as ``lscpu`` and ``nproc`` would say."""
    model = platform.processor() or "unknown CPU"
    try:
        with Path("/proc/cpuinfo").open(encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def revision() -> str:
    """The commit measured, and whether app/ or pipeline/ had uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "pipeline"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown revision"
    return f"{commit or 'unknown'}{' + uncommitted changes in app/ or pipeline/' if dirty else ''}"


def header(title: str, notes: Sequence[str] = ()) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {title}")
    print(f"# machine: {machine()}; load average {os.getloadavg()[0]:.2f}; {now}")
    print(f"# code: {revision()}")
    for note in notes:
        print(f"# {note}")


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for row in cells:
        first, *rest = zip(row, widths, strict=True)
        print("  ".join([first[0].ljust(first[1]), *(cell.rjust(width) for cell, width in rest)]))


def ratio_line(label: str, value: float, target: str) -> None:
    """The last line a reader (and the smoke test) looks for."""
    print(f"ratio {label}: {value:.2f}x (target {target})")
