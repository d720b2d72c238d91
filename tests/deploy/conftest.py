"""Paths of the deploy stacks and a helper that copies one and changes it (mutation tests)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.stack import Stack

REPOSITORY = Path(__file__).resolve().parents[2]
TERRAFORM = REPOSITORY / "deploy" / "terraform"
STACKS = ("aws", "alicloud")

Mutation = Callable[[str], str]


def replace_in_block(header: str, old: str, new: str) -> Mutation:
    """Replace ``old`` by ``new`` inside the block that opens with ``header`` only."""

    def mutate(text: str) -> str:
        start = text.index(header)
        end = text.index("\n}\n", start)
        block = text[start:end]
        assert old in block, f"{old!r} not in {header}"
        return text[:start] + block.replace(old, new, 1) + text[end:]

    return mutate


def remove_block(header: str) -> Mutation:
    """Delete the top-level block that opens with ``header``."""

    def mutate(text: str) -> str:
        pattern = re.compile(re.escape(header) + r".*?\n}\n", re.DOTALL)
        mutated, count = pattern.subn("", text, count=1)
        assert count == 1, f"block {header} not found"
        return mutated

    return mutate


def append(extra: str) -> Mutation:
    def mutate(text: str) -> str:
        return text + "\n" + extra

    return mutate


@pytest.fixture(params=STACKS)
def stack_dir(request: pytest.FixtureRequest) -> Path:
    return TERRAFORM / request.param


@pytest.fixture
def mutated_stack(tmp_path: Path) -> Callable[[str, str, Mutation], Stack]:
    """Copy a stack (without its examples) to tmp_path, apply a mutation to one file, parse it."""

    def build(stack: str, file: str, mutation: Mutation) -> Stack:
        target = tmp_path / stack
        shutil.copytree(TERRAFORM / stack, target, ignore=shutil.ignore_patterns("examples"))
        path = target / file
        original = path.read_text(encoding="utf-8")
        changed = mutation(original)
        assert changed != original, "the mutation changed nothing"
        path.write_text(changed, encoding="utf-8")
        return Stack(target)

    return build
