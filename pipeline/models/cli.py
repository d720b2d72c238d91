"""``enclave models list|prepare|verify|add|remove``: the operator's view of the model directory.

This is the command-line edge, so it is the one place that reads ``ENCLAVE_MODEL_DIR``,
``ENCLAVE_ALLOW_NON_COMMERCIAL_MODELS`` and ``XDG_DATA_HOME``; the registry itself only
takes arguments.
"""

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.models.manifest import KINDS, ModelSpec, ModelTask
from pipeline.models.registry import ModelRegistry
from pipeline.models.verification import FileStatus, VerificationResult

MODEL_DIR_ENV = "ENCLAVE_MODEL_DIR"
ALLOW_NON_COMMERCIAL_ENV = "ENCLAVE_ALLOW_NON_COMMERCIAL_MODELS"
_TRUE = {"1", "true", "yes", "on"}


def default_model_dir(environ: Mapping[str, str]) -> Path:
    """``$ENCLAVE_MODEL_DIR``, else ``$XDG_DATA_HOME/enclave/models``, else ``~/.local/share/…``."""
    if environ.get(MODEL_DIR_ENV):
        return Path(environ[MODEL_DIR_ENV]).expanduser()
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "enclave" / "models"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model-dir`` and ``--allow-non-commercial-models``, shared with ``enclave run``."""
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help=f"model directory (default: ${MODEL_DIR_ENV}, else $XDG_DATA_HOME/enclave/models, "
        "else ~/.local/share/enclave/models)",
    )
    parser.add_argument(
        "--allow-non-commercial-models",
        action="store_true",
        default=None,
        help="acknowledge that models not cleared for commercial use (e.g. insightface's) may "
        f"be loaded (also ${ALLOW_NON_COMMERCIAL_ENV}=1)",
    )


def registry_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ModelRegistry:
    """The registry the parsed ``add_model_arguments`` flags (and environment) describe."""
    environ = os.environ if environ is None else environ
    model_dir = args.model_dir or default_model_dir(environ)
    allow = args.allow_non_commercial_models
    if allow is None:
        allow = environ.get(ALLOW_NON_COMMERCIAL_ENV, "").strip().lower() in _TRUE
    return ModelRegistry(model_dir, allow_non_commercial=allow)


def _model_status(spec: ModelSpec, results: list[VerificationResult]) -> str:
    statuses = {result.status for result in results if result.model == spec.name}
    for status in (FileStatus.MISMATCH, FileStatus.MISSING, FileStatus.NOT_PREPARED):
        if status in statuses:
            return status.value
    return FileStatus.OK.value


def _list(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    results = registry.verify()
    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "task": spec.task.value,
            "kind": spec.kind,
            "licence": spec.licence,
            "commercial_use": spec.commercial_use,
            "origin": "bundled" if spec.bundled else "provisioned",
            "status": _model_status(spec, results),
            "source": spec.source,
            "files": [{"name": f.name, "sha256": f.sha256} for f in spec.files],
        }
        for spec in registry.specs()
    ]
    if args.json:
        print(json.dumps({"model_dir": str(registry.model_dir), "models": rows}, indent=2))
        return 0
    print(f"model directory: {registry.model_dir}")
    header = ("NAME", "TASK", "KIND", "LICENCE", "COMMERCIAL", "ORIGIN", "STATUS")
    table = [header] + [
        (
            row["name"],
            row["task"],
            row["kind"],
            row["licence"],
            "yes" if row["commercial_use"] else "no (needs acknowledgement)",
            row["origin"],
            row["status"],
        )
        for row in rows
    ]
    widths = [max(len(str(line[column])) for line in table) for column in range(len(header))]
    for line in table:
        cells = (str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _prepare(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    for spec in registry.prepare():
        names = ", ".join(f"{f.name} (sha256 {f.sha256[:12]}…)" for f in spec.files)
        print(f"{spec.name}: ready: {names}")
    print(f"bundled models prepared in {registry.model_dir}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    results = registry.verify()
    for result in results:
        line = f"{result.status.value:<12} {result.model:<20} {result.file}"
        if result.status is FileStatus.MISMATCH:
            line += f"  expected {result.expected}, found {result.actual}"
        if result.detail:
            line += f"  ({result.detail})"
        print(line)
    failed = [result for result in results if result.failed]
    if failed:
        names = ", ".join(sorted({result.model for result in failed}))
        print(
            f"enclave: error: {len(failed)} model file(s) failed verification ({names}); "
            "bundled: delete the file and run `enclave models prepare`; provisioned: restore "
            "it or `enclave models add` it again",
            file=sys.stderr,
        )
        return 1
    pending = sum(result.status is FileStatus.NOT_PREPARED for result in results)
    if pending:
        print(
            f"no file failed verification; {pending} bundled file(s) not written yet "
            "(created on first use, or now by `enclave models prepare`)"
        )
    else:
        print("all model files verified")
    return 0


def _add(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    spec = registry.add(
        args.file,
        task=ModelTask(args.task),
        kind=args.kind,
        name=args.name,
        licence=args.licence,
        source=args.source,
        commercial_use=args.commercial,
    )
    file = spec.files[0]
    print(f"added {spec.name} ({spec.task.value}, {spec.kind}): {file.name} sha256 {file.sha256}")
    if not spec.commercial_use:
        print(
            f"note: licence {spec.licence!r} is not cleared for commercial use; it loads only "
            f"with --allow-non-commercial-models or {ALLOW_NON_COMMERCIAL_ENV}=1"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    spec = registry.remove(args.name)
    print(f"removed {spec.name} and its files from {registry.model_dir}")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``enclave models …`` to the ``enclave`` command."""
    models = subparsers.add_parser(
        "models",
        help="list, prepare, verify and add models",
        description="Every model file is pinned by SHA-256; nothing is downloaded.",
    )
    commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    listing = commands.add_parser("list", help="models with task, licence and status")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    prepare = commands.add_parser(
        "prepare", help="write the bundled models into the model directory"
    )
    prepare.set_defaults(handler=_prepare)

    verify = commands.add_parser(
        "verify", help="hash every model file; exit 1 if any is missing or altered"
    )
    verify.set_defaults(handler=_verify)

    add = commands.add_parser("add", help="provision an operator's model file")
    add.add_argument("file", type=Path, help="the model file (copied into the model directory)")
    add.add_argument("--task", required=True, choices=[task.value for task in ModelTask])
    add.add_argument("--kind", required=True, choices=sorted(KINDS))
    add.add_argument("--name", help="model name (default: the kind's usual name)")
    add.add_argument("--licence", "--license", required=True, help="e.g. 'Apache-2.0'")
    add.add_argument("--source", default="provisioned by operator", help="where the file came from")
    add.add_argument("--commercial", action="store_true", help="the licence allows commercial use")
    add.set_defaults(handler=_add)

    remove = commands.add_parser("remove", help="forget a provisioned model, delete its file")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)

    for parser in (listing, prepare, verify, add, remove):
        add_model_arguments(parser)


register_models_commands = register
