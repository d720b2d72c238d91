"""What an invariant check reports: which rule, where, and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.detail}"


def rules(violations: list[Violation]) -> set[str]:
    """The rule names among ``violations`` (what a mutation test asserts on)."""
    return {violation.rule for violation in violations}
