"""Peak memory of ``enclave run`` on a clip and on the same clip ten times longer.

    python -m bench.memory            # 640x360, 40 and 400 frames
    python -m bench.memory --quick    # 320x180, 4 and 40 frames (the smoke test)

Each run is a child process (``enclave run`` with the bundled landmark swapper, the
default) started with a fresh, empty ``TMPDIR`` and working directory. Peak RSS is the
kernel's own high-water mark for that child (``wait4``'s ``ru_maxrss``). While it runs,
the bench samples ``/proc/PID/fd`` every few milliseconds and records every regular file
the process opens; afterwards it lists every file created in ``TMPDIR``, the working
directory and the output folder. "No frame files" means: the only file created is the
output video (written beside its final name, then renamed), and no image file other
than the source photo was ever opened.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import header, ratio_line, table
from bench.workload import ONE_FACE, drifting_frames, prepare_models
from tests.pipeline.media_fixtures import make_clip
from tests.pipeline.photos import write_astronaut

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".raw")
KNOWN_SMALL_FILES = {".ses": "onnxruntime 1.32 writes $TMPDIR/.ses on import (timestamp + id)"}
"""Files a library writes that are not frames: name -> why; accepted only under 1 KiB."""


@dataclass
class Observation:
    peak_rss_mib: float
    seconds: float
    opened: set[str] = field(default_factory=set)
    created: list[str] = field(default_factory=list)


def enclave_command() -> list[str]:
    installed = Path(sys.executable).with_name("enclave")
    return [str(installed)] if installed.is_file() else [sys.executable, "-m", "app.cli"]


def files_under(*roots: Path) -> set[str]:
    return {str(path) for root in roots for path in root.rglob("*") if path.is_file()}


def watch_open_files(pid: int, seen: set[str], stop: threading.Event) -> None:
    """Record every regular file ``pid`` holds open, sampled until ``stop``."""
    fd_dir = Path(f"/proc/{pid}/fd")
    while not stop.is_set():
        try:
            for link in fd_dir.iterdir():
                try:
                    target = str(link.readlink())
                except OSError:
                    continue
                if target.startswith("/"):
                    seen.add(target)
        except OSError:
            pass
        time.sleep(0.002)


def observe(command: list[str], root: Path) -> Observation:
    """Run ``command`` in ``root/cwd`` with ``TMPDIR=root/tmp``; peak RSS and files touched."""
    tmp, cwd, out = root / "tmp", root / "cwd", root / "out"
    for folder in (tmp, cwd, out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    before = files_under(tmp, cwd, out)
    env = dict(os.environ, TMPDIR=str(tmp))
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, str(out / "output.mp4")],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    opened: set[str] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=watch_open_files, args=(process.pid, opened, stop))
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"enclave run failed ({process.returncode}): {stderr.strip()}")
    created = sorted(files_under(tmp, cwd, out) - before)
    return Observation(usage.ru_maxrss / 1024, seconds, opened, created)


def image_files(paths: set[str], allowed: Path) -> list[str]:
    return sorted(
        path for path in paths if path.lower().endswith(IMAGE_SUFFIXES) and path != str(allowed)
    )


def expected_file(path: Path) -> bool:
    """The output video, or a tiny file a library is known to write (noted in the output)."""
    if path.parent.name == "out" and path.name == "output.mp4":
        return True
    why = KNOWN_SMALL_FILES.get(path.name)
    if why is not None and path.stat().st_size < 1024:
        print(f"# not a frame: {path.name} ({path.stat().st_size} bytes): {why}")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="320x180, 4 and 40 frames")
    parser.add_argument("--frames", type=int, default=40, help="frames in the short clip")
    args = parser.parse_args(argv)
    frames = 4 if args.quick else args.frames
    size = (320, 180) if args.quick else (640, 360)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as temporary:
        work = Path(temporary)
        model_dir = prepare_models(work / "models")
        source = write_astronaut(work)
        short = make_clip(work / "short.mp4", drifting_frames(ONE_FACE, frames, size), size=size)
        long = make_clip(work / "long.mp4", drifting_frames(ONE_FACE, frames * 10, size), size=size)
        results = {}
        for label, clip in (("short", short), ("10x longer", long)):
            command = [
                *enclave_command(),
                "run",
                "--no-progress",
                "--model-dir",
                str(model_dir),
                "--source",
                str(source),
                "--target",
                str(clip),
                "--output",
            ]
            results[label] = (clip, observe(command, work / label.replace(" ", "-")))
        header(
            "peak RSS of `enclave run` (landmark swapper) on a clip and a 10x longer one",
            [f"{size[0]}x{size[1]}, H.264 + AAC, {frames} and {frames * 10} frames at 25 fps"],
        )
        rows = []
        strays: list[str] = []
        for label, (clip, seen) in results.items():
            opened_images = image_files(seen.opened, source)
            unexpected = [path for path in seen.created if not expected_file(Path(path))]
            strays += opened_images + unexpected
            rows.append(
                [
                    label,
                    f"{clip.stat().st_size / 1e6:.1f} MB",
                    f"{seen.peak_rss_mib:.0f}",
                    f"{seen.seconds:.1f}",
                    len(seen.created),
                    len(opened_images),
                ]
            )
        table(
            ["clip", "size", "peak RSS MiB", "seconds", "files created", "image files opened"],
            rows,
        )
        for path in strays:
            print(f"# unexpected file: {path}")
        print(
            "# frame files written: "
            + ("none (only the output video was created)" if not strays else f"{len(strays)}")
        )
        ratio = results["10x longer"][1].peak_rss_mib / results["short"][1].peak_rss_mib
        ratio_line("peak RSS 10x longer / short", ratio, "<= 1.1")
    return 0  # stray files are a result, reported above; tests/bench checks for none


if __name__ == "__main__":
    raise SystemExit(main())
