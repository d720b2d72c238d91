"""One Terraform module directory, parsed with python-hcl2, and the look-ups the checks need.

Only the module's own ``*.tf`` files are read (not ``examples/``): the invariants are
properties of the module, whatever a caller passes. Values stay as Terraform wrote them
(``${var.office_cidr}``); ``resolve`` turns a plain ``var.`` reference into the variable's
default and substitutes string ``local.`` values, which is all the checks need to see what
a rule admits by default.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})

_VARIABLE_ONLY = re.compile(r"\$\{var\.(\w+)\}")
_LOCAL_INTERPOLATION = re.compile(r"\$\{local\.([\w.]+)\}")


@dataclass(frozen=True)
class Block:
    """A ``resource`` or ``data`` block."""

    kind: str
    type: str
    name: str
    body: dict[str, Any]
    file: Path

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        return f"{prefix}{self.type}.{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file.parent.name}/{self.file.name}: {self.address}"

    def first(self, block_name: str) -> dict[str, Any]:
        """The first nested block called ``block_name`` (``{}`` when there is none)."""
        nested = self.body.get(block_name)
        if isinstance(nested, list) and nested and isinstance(nested[0], dict):
            return nested[0]
        return {}

    def nested(self, block_name: str) -> list[dict[str, Any]]:
        """Every nested block called ``block_name``."""
        nested = self.body.get(block_name)
        if isinstance(nested, list):
            return [item for item in nested if isinstance(item, dict)]
        return []


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> dict[str, Any]:
    """Parse one file's text; cached because mutation tests re-read mostly unchanged files."""
    if hasattr(hcl2, "SerializationOptions"):
        # python-hcl2 >= 7 keeps quotes and block markers unless told otherwise.
        options = hcl2.SerializationOptions(
            strip_string_quotes=True,
            explicit_blocks=False,
            with_comments=False,
            preserve_heredocs=False,
        )
        parsed: dict[str, Any] = hcl2.loads(text, serialization_options=options)
        return parsed
    legacy: dict[str, Any] = hcl2.loads(text)
    return legacy


class Stack:
    """The blocks, variables and locals of one module directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.blocks: list[Block] = []
        self.variables: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        files = sorted(directory.glob("*.tf"))
        if not files:
            raise FileNotFoundError(f"no *.tf files in {directory}")
        for path in files:
            document = _parse(path.read_text(encoding="utf-8"))
            for kind in ("resource", "data"):
                for entry in document.get(kind, []):
                    for block_type, named in entry.items():
                        for name, body in named.items():
                            self.blocks.append(Block(kind, block_type, name, body, path))
            for entry in document.get("variable", []):
                self.variables.update(entry)
            for entry in document.get("locals", []):
                self.locals.update(entry)

    def resources(self, block_type: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == "resource" and b.type == block_type]

    def data(self, block_type: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == "data" and b.type == block_type]

    def has(self, block_type: str) -> bool:
        return bool(self.resources(block_type))

    def find(self, reference: str) -> Block | None:
        """The block an expression such as ``${data.aws_iam_policy_document.x.json}`` names."""
        match = re.fullmatch(r"\$\{(data\.)?(\w+)\.(\w+)(\.[\w\[\]*.]+)?\}", str(reference))
        if match is None:
            return None
        kind = "data" if match[1] else "resource"
        for block in self.blocks:
            if (block.kind, block.type, block.name) == (kind, match[2], match[3]):
                return block
        return None

    def referencing(self, block_type: str, attribute: str, target: Block) -> list[Block]:
        """Resources of ``block_type`` whose ``attribute`` points at ``target``."""
        pattern = re.compile(rf"\$\{{{re.escape(target.type)}\.{re.escape(target.name)}\.\w+\}}")
        return [
            block
            for block in self.resources(block_type)
            if pattern.fullmatch(str(block.body.get(attribute, "")))
        ]

    def resolve(self, value: Any) -> Any:
        """``${var.x}`` becomes x's default; ``${local.a.b}`` inside a string its string value."""
        if not isinstance(value, str):
            return value
        variable = _VARIABLE_ONLY.fullmatch(value)
        if variable is not None:
            return self.variables.get(variable[1], {}).get("default", value)
        return _LOCAL_INTERPOLATION.sub(self._local_text, value)

    def _local_text(self, match: re.Match[str]) -> str:
        value: Any = self.locals
        for part in match[1].split("."):
            if not isinstance(value, dict) or part not in value:
                return match[0]
            value = value[part]
        return value if isinstance(value, str) else match[0]


def as_list(value: Any) -> list[Any]:
    """HCL attributes that may be a scalar or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
