"""Shared pytest fixtures; each lives in its own module and is imported here."""

from tests.seaweed import seaweedfs  # noqa: F401
