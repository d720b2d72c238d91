"""The roles a caller can hold, and which roles imply others."""

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Role(StrEnum):
    SUBMITTER = "submitter"  # creates jobs and acts on its own
    READER = "reader"  # reads its own jobs
    AUDITOR = "auditor"  # reads every caller's jobs and the audit trail
    ADMIN = "admin"  # everything, including purging others' jobs


# A submitter must be able to read what it submitted; an admin can do what any role can.
IMPLIED_ROLES: dict[Role, frozenset[Role]] = {
    Role.SUBMITTER: frozenset({Role.READER}),
    Role.READER: frozenset(),
    Role.AUDITOR: frozenset({Role.READER}),
    Role.ADMIN: frozenset({Role.SUBMITTER, Role.READER, Role.AUDITOR}),
}


def expand_roles(roles: Iterable[Role]) -> frozenset[Role]:
    """The given roles plus every role they imply."""
    granted = set(roles)
    for role in list(granted):
        granted |= IMPLIED_ROLES[role]
    return frozenset(granted)


class RoleMapping:
    """Roles of a caller, from its identity name and its certificate's organisational units."""

    def __init__(
        self,
        by_identity: Mapping[str, Iterable[Role]],
        by_organizational_unit: Mapping[str, Iterable[Role]],
    ) -> None:
        self.by_identity = {name: frozenset(roles) for name, roles in by_identity.items()}
        self.by_unit = {unit: frozenset(roles) for unit, roles in by_organizational_unit.items()}

    def roles_for(self, name: str, organizational_units: Iterable[str] = ()) -> frozenset[Role]:
        granted: set[Role] = set(self.by_identity.get(name, ()))
        for unit in organizational_units:
            granted |= self.by_unit.get(unit, frozenset())
        return expand_roles(granted)
