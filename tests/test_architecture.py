"""The tree keeps its promises: pipeline is a library that never reaches into the service."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICE_ONLY = {
    "app",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "boto3",
    "botocore",
    "celery",
    "pydantic_settings",
    "httpx",
    "uvicorn",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_pipeline_never_imports_the_service_or_its_libraries() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & SERVICE_ONLY)
        for path in (ROOT / "pipeline").rglob("*.py")
        if imported_roots(path) & SERVICE_ONLY
    }
    assert offenders == {}


def test_no_module_downloads_anything_at_run_time() -> None:
    # spelt in pieces so that a plain text search for them finds real calls, not this list
    forbidden = ("hf_hub_" + "download", "url" + "retrieve", "url" + "open", "download_" + "models")
    for package in ("pipeline", "app"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            assert not any(word in text for word in forbidden), path
