"""Object keys are built from a job id, a fixed area and a sanitised name, never raw input."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.storage.errors import InvalidKeyError
from app.storage.keys import job_key, job_prefix, safe_filename, validate_key, validate_prefix

JOB = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_plain_names_are_kept():
    assert job_key(JOB, "inputs", "t1.jpg") == f"inputs/{JOB}/t1.jpg"
    assert job_key(JOB, "outputs", "result_v2-final.mp4") == f"outputs/{JOB}/result_v2-final.mp4"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "..",
        ".",
        "...",
        "/etc/shadow",
        "..\\..\\windows\\system32\\config",
        "C:\\boot.ini",
        ".bashrc",
        "a/../../b.jpg",
        "photo\x00.jpg",
        "photo\n.jpg",
        "name with spaces.jpg",
        "ünïcödé.png",
        "x" * 500 + ".jpg",
        "",
        "a..b.jpg",
        "-rf.jpg",
    ],
)
def test_hostile_names_never_reach_the_key(hostile):
    key = job_key(JOB, "inputs", hostile)
    assert key.startswith(f"inputs/{JOB}/")
    name = key.removeprefix(f"inputs/{JOB}/")
    assert "/" not in name and "\\" not in name
    assert not name.startswith(".")
    assert ".." not in name
    assert len(name) <= 128
    assert validate_key(key) == key


def test_generated_names_keep_a_safe_extension_and_are_stable():
    first = safe_filename("../../my holiday photo.JPG")
    assert first.startswith("file-") and first.endswith(".jpg")
    assert safe_filename("../../my holiday photo.JPG") == first
    assert safe_filename("other name.jpg") != first


def test_unsafe_extensions_are_dropped():
    name = safe_filename("evil.p\x00hp")
    assert name.startswith("file-") and "." not in name


def test_basename_only_from_paths():
    assert safe_filename("/home/user/t1.jpg") == "t1.jpg"
    assert safe_filename("C:\\Users\\me\\t1.jpg") == "t1.jpg"


def test_area_must_be_known():
    with pytest.raises(InvalidKeyError, match="area"):
        job_key(JOB, "secrets", "t1.jpg")  # type: ignore[arg-type]


def test_job_id_must_be_a_uuid():
    with pytest.raises(InvalidKeyError, match="UUID"):
        job_key("../../x", "inputs", "t1.jpg")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "non-empty"),
        ("../x", "'..'"),
        ("inputs/../x", "'..'"),
        ("inputs/./x", "'.'"),
        ("/abs/x", "relative"),
        ("a\\b", "backslash"),
        ("a//b", "empty path segment"),
        ("a/b/", "end with"),
        ("a/\x00b", "control"),
        ("a/\x1bb", "control"),
        ("a/.hidden", "start with '.'"),
        ("a/b c", r"\[A-Za-z0-9"),
        ("a/" + "x" * 600, "longer"),
    ],
)
def test_validate_key_refuses_with_reason(key, reason):
    with pytest.raises(InvalidKeyError, match=reason):
        validate_key(key)


def test_prefixes_must_be_specific():
    assert validate_prefix(job_prefix(JOB, "outputs")) == f"outputs/{JOB}/"
    for bad in ["", "/", "inputs", "inputs/../", "../"]:
        with pytest.raises(InvalidKeyError):
            validate_prefix(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_name_yields_a_valid_key_inside_the_job(name: str):
    key = job_key(JOB, "outputs", name)
    assert validate_key(key) == key
    assert key.startswith(f"outputs/{JOB}/") and key.count("/") == 2
