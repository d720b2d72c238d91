"""The ``enclave`` command: one parser, sub-commands registered by the modules that own them.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its
sub-commands and sets ``handler`` (``Callable[[argparse.Namespace], int]``) on each.
Heavy imports (FastAPI, onnxruntime, boto3) happen inside handlers, so ``enclave --help``
stays fast.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

from pipeline.errors import InputError, PipelineError

COMMAND_MODULES: tuple[str, ...] = (
    "pipeline.cli",
    "app.security.cli",
    "app.service_cli",
    "app.jobs_cli",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure a command reports as one line and an exit code, never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enclave", description="Private face swapping: pipeline, service and tools."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        exit_code: int = args.handler(args)
    except CommandError as error:
        print(f"enclave: error: {error}", file=sys.stderr)
        return error.exit_code
    except InputError as error:
        print(f"enclave: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PipelineError as error:
        print(f"enclave: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:
        # a file system refusal (permissions, a directory where a file was expected, a full
        # disk): the user can act on the message, a traceback would only hide it
        print(
            f"enclave: error: {error.strerror or error}: {error.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("enclave: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
