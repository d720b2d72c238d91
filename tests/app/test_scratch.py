"""Worker scratch directories: a killed worker's files are swept by the next worker."""

import os
import subprocess
import sys
from pathlib import Path

from app.jobs.scratch import PREFIX, make_scratch_dir, sweep_abandoned


def ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_directories_of_ended_owners_are_swept(tmp_path: Path) -> None:
    abandoned = tmp_path / f"{PREFIX}{ended_pid()}-abc"
    abandoned.mkdir()
    (abandoned / "target.png").write_bytes(b"a face")
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    live.mkdir()
    unnamed = tmp_path / f"{PREFIX}ghijkl"  # no owner in the name: not ours to judge
    unnamed.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_bytes(b"not a scratch file")
    planted = tmp_path / f"{PREFIX}{ended_pid()}-xyz"
    planted.symlink_to(elsewhere, target_is_directory=True)

    assert sweep_abandoned(tmp_path) == [abandoned]
    assert not abandoned.exists()
    assert live.is_dir() and unnamed.is_dir()
    assert (elsewhere / "keep").read_bytes() == b"not a scratch file"


def test_a_new_scratch_directory_is_private_named_after_its_owner_and_sweeps_first(
    tmp_path: Path, monkeypatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    abandoned = tmp_path / f"{PREFIX}{ended_pid()}-abc"
    abandoned.mkdir()
    scratch = make_scratch_dir()
    assert scratch.parent == tmp_path
    assert scratch.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert scratch.stat().st_mode & 0o777 == 0o700
    assert not abandoned.exists()
