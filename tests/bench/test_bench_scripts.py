"""Every bench script runs end to end in its ``--quick`` mode and ends with its ratio line.

The figures themselves are not asserted (timings on a shared CI machine mean nothing);
what a reader relies on is that ``python -m bench.NAME`` works on a fresh checkout and
reports a ratio, so docs/performance.md can be reproduced.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATIO_LINE = re.compile(r"^ratio .+: \d+(\.\d+)?x \(target .+\)$")


def run_quick(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module --quick args…`` from the repository root; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("script", ["video", "paste", "memory", "stages", "api"])
def test_bench_script_runs_quick_and_prints_its_ratio(script: str) -> None:
    result = run_quick(f"bench.{script}")
    lines = result.stdout.strip().splitlines()
    assert lines, "the bench printed nothing"
    assert RATIO_LINE.match(lines[-1]), lines[-1]
    if script == "memory":
        # the streaming guarantee itself: a video run writes no frame files anywhere
        assert "# frame files written: none" in result.stdout, result.stdout


@pytest.mark.slow
@pytest.mark.services
def test_api_bench_as_an_api_host_checks_every_job_reached_the_broker() -> None:
    from tests.app.services import require_rabbitmq

    require_rabbitmq()
    result = run_quick("bench.api", "--dispatch", "celery")
    assert "# lost submissions: 0" in result.stdout, result.stdout
    enclave_row = next(line for line in result.stdout.splitlines() if line.startswith("enclave"))
    assert int(enclave_row.split()[4]) > 0  # accepted jobs, each found queued on the broker


@pytest.mark.slow
def test_api_bench_can_keep_the_services_storage_on_another_volume(tmp_path: Path) -> None:
    result = run_quick("bench.api", "--storage-root", str(tmp_path))
    assert f"local storage under {tmp_path}" in result.stdout
    assert "# lost submissions: 0" in result.stdout, result.stdout
    assert list(tmp_path.iterdir()) == []  # the run's objects are removed with it
