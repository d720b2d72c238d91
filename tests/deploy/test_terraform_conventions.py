"""House conventions of the Terraform code (STYLE.md, terraform-aws-modules layout)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.conftest import STACKS, TERRAFORM
from tests.deploy.stack import Stack

MODULE_DIRECTORIES = [TERRAFORM / stack for stack in STACKS]
ALL_DIRECTORIES = MODULE_DIRECTORIES + [
    TERRAFORM / stack / "examples" / "complete" for stack in STACKS
]
SKIP = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")


@pytest.mark.parametrize("directory", ALL_DIRECTORIES, ids=lambda d: str(d.relative_to(TERRAFORM)))
def test_every_variable_is_typed_described_and_validated(directory: Path):
    stack = Stack(directory)
    assert stack.variables, f"{directory} declares no variables"
    for name, variable in stack.variables.items():
        assert variable.get("type"), f"var.{name} has no type"
        assert "any" not in str(variable["type"]), f"var.{name} uses type any"
        assert len(str(variable.get("description", ""))) > 10, f"var.{name} has no description"
        assert variable.get("validation"), f"var.{name} has no validation block"


@pytest.mark.parametrize("directory", MODULE_DIRECTORIES, ids=lambda d: d.name)
def test_module_layout_and_outputs(directory: Path):
    for required in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (directory / required).is_file(), f"{directory.name}/{required} is missing"
    outputs = (directory / "outputs.tf").read_text(encoding="utf-8")
    values = re.findall(r"^\s*value\s*=\s*(.+)$", outputs, flags=re.MULTILINE)
    assert values
    constant = [v for v in values if not v.startswith("try(") and "${" not in v]
    assert constant == [], f"outputs not wrapped in try(): {constant}"


@pytest.mark.parametrize("directory", ALL_DIRECTORIES, ids=lambda d: str(d.relative_to(TERRAFORM)))
def test_providers_are_pinned(directory: Path):
    versions = (directory / "versions.tf").read_text(encoding="utf-8")
    assert re.search(r'required_version\s*=\s*">=\s*1\.\d+', versions)
    constraints = re.findall(r'^\s*version\s*=\s*"([^"]+)"', versions, flags=re.MULTILINE)
    assert constraints and all("<" in c and ">=" in c for c in constraints), constraints


def test_examples_call_the_module_by_relative_path():
    for stack in STACKS:
        example = (TERRAFORM / stack / "examples" / "complete" / "main.tf").read_text(
            encoding="utf-8"
        )
        assert re.search(r'source\s*=\s*"\.\./\.\./"', example), stack


def test_every_checkov_skip_carries_a_reason():
    skips = []
    for path in TERRAFORM.rglob("*.tf"):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = SKIP.search(line)
            if match:
                skips.append((path.name, match["check"], (match["reason"] or "").strip()))
    assert skips, "expected the documented skips"
    unexplained = [(file, check) for file, check, reason in skips if len(reason) < 30]
    assert unexplained == [], f"skips without a written reason: {unexplained}"
