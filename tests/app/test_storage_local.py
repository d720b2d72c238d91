"""The local-directory backend: atomic writes, confinement to its root, signed upload URLs."""

import os
import stat
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from app.storage.base import ObjectData, Storage
from app.storage.errors import (
    InvalidKeyError,
    InvalidUploadTokenError,
    ObjectNotFoundError,
    ObjectTooLargeError,
    StorageError,
    UploadTokenExpiredError,
)
from app.storage.keys import job_key, job_prefix
from app.storage.local import LocalStorage

SECRET = b"s" * 32
JOB = uuid.uuid4()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(tmp_path: Path, clock: Clock) -> LocalStorage:
    return LocalStorage(tmp_path / "store", upload_secret=SECRET, clock=clock)


async def chunks_of(*parts: bytes):
    for part in parts:
        yield part


def test_satisfies_the_storage_protocol(storage: LocalStorage):
    backend: Storage = storage
    assert backend is storage


async def test_round_trip_bytes_and_files(storage: LocalStorage, tmp_path: Path):
    key = job_key(JOB, "inputs", "t1.jpg")
    await storage.put_bytes(key, b"\xff\xd8jpeg bytes", "image/jpeg")
    assert await storage.exists(key)
    info = await storage.stat(key)
    assert (info.key, info.size, info.content_type) == (key, 12, "image/jpeg")

    source = tmp_path / "video.mp4"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source.write_bytes(payload)
    video_key = job_key(JOB, "outputs", "video.mp4")
    await storage.put_file(video_key, source, "video/mp4")
    downloaded = tmp_path / "out" / "copy.mp4"
    await storage.get_file(video_key, downloaded)
    assert downloaded.read_bytes() == payload
    streamed = b"".join([chunk async for chunk in storage.iter_bytes(video_key)])
    assert streamed == payload


async def test_put_many_stores_each_object_of_a_new_job(storage: LocalStorage):
    job = uuid.uuid4()
    objects = [
        ObjectData(job_key(job, "inputs", "0-face.png"), b"source", "image/png"),
        ObjectData(job_key(job, "inputs", "1-face.png"), b"target", "image/png"),
    ]
    await storage.put_many(objects)
    for item in objects:
        assert b"".join([c async for c in storage.iter_bytes(item.key)]) == item.data
    stored = sorted((storage.root / "inputs" / str(job)).iterdir())
    assert [path.name for path in stored] == ["0-face.png", "1-face.png"]
    assert [stat.S_IMODE(path.stat().st_mode) for path in stored] == [0o600, 0o600]
    with pytest.raises(InvalidKeyError):
        await storage.put_many([ObjectData(f"inputs/{job}/../escape.png", b"x")])
    assert not [p for p in storage.root.rglob(".tmp-*")]


async def test_missing_objects_raise_not_found(storage: LocalStorage, tmp_path: Path):
    key = job_key(JOB, "outputs", "nothing.png")
    assert not await storage.exists(key)
    with pytest.raises(ObjectNotFoundError):
        await storage.stat(key)
    with pytest.raises(ObjectNotFoundError):
        await storage.get_file(key, tmp_path / "x.png")
    with pytest.raises(ObjectNotFoundError):
        [chunk async for chunk in storage.iter_bytes(key)]
    assert not (tmp_path / "x.png").exists()


async def test_a_directory_is_not_an_object(storage: LocalStorage):
    await storage.put_bytes(job_key(JOB, "inputs", "a.jpg"), b"a")
    with pytest.raises(ObjectNotFoundError):
        await storage.stat(f"inputs/{JOB}")


async def test_overwrite_replaces_whole_object_and_leaves_no_temp_files(storage: LocalStorage):
    key = job_key(JOB, "outputs", "result.png")
    await storage.put_bytes(key, b"first version, longer")
    await storage.put_bytes(key, b"second")
    assert b"".join([c async for c in storage.iter_bytes(key)]) == b"second"
    assert sorted(p.name for p in (storage.root / "outputs" / str(JOB)).iterdir()) == ["result.png"]


async def test_failed_write_keeps_previous_object(storage: LocalStorage, tmp_path: Path):
    key = job_key(JOB, "outputs", "result.png")
    await storage.put_bytes(key, b"good")
    with pytest.raises(FileNotFoundError):
        await storage.put_file(key, tmp_path / "does-not-exist.png")
    assert b"".join([c async for c in storage.iter_bytes(key)]) == b"good"
    assert len(list((storage.root / "outputs" / str(JOB)).iterdir())) == 1


async def test_delete_prefix_removes_only_that_job(storage: LocalStorage):
    other = uuid.uuid4()
    await storage.put_bytes(job_key(JOB, "inputs", "a.jpg"), b"a")
    await storage.put_bytes(job_key(JOB, "inputs", "b.jpg"), b"b")
    await storage.put_bytes(job_key(other, "inputs", "a.jpg"), b"keep")
    assert await storage.delete_prefix(job_prefix(JOB, "inputs")) == 2
    assert not await storage.exists(job_key(JOB, "inputs", "a.jpg"))
    assert await storage.exists(job_key(other, "inputs", "a.jpg"))
    assert await storage.delete_prefix(job_prefix(JOB, "inputs")) == 0


@pytest.mark.parametrize("key", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\..\\b", ""])
async def test_keys_that_escape_are_refused(storage: LocalStorage, key: str, tmp_path: Path):
    with pytest.raises(InvalidKeyError):
        await storage.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        await storage.stat(key)
    assert not (tmp_path / "escape.txt").exists()


async def test_symlink_inside_root_cannot_lead_outside(storage: LocalStorage, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage.root / "inputs").mkdir()
    (storage.root / "inputs" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKeyError, match="outside the storage root"):
        await storage.put_bytes("inputs/link/planted.txt", b"x")
    assert list(outside.iterdir()) == []


async def test_a_batch_that_fails_midway_leaves_no_temporary_files(storage: LocalStorage):
    (storage.root / "inputs").mkdir()
    (storage.root / "inputs" / "occupied").write_bytes(b"a file where a folder should be")
    first = job_key(JOB, "inputs", "a.png")
    with pytest.raises(StorageError, match="cannot write under"):
        await storage.put_many([ObjectData(first, b"a"), ObjectData("inputs/occupied/b", b"b")])
    assert not await storage.exists(first)
    assert [path.name for path in storage.root.rglob(".tmp-*")] == []


async def test_a_batch_checks_every_folder_of_every_key(storage: LocalStorage, tmp_path: Path):
    """Folders checked for one key of a batch are not checked again; the others are."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage.root / "inputs").mkdir()
    (storage.root / "inputs" / "link").symlink_to(outside, target_is_directory=True)
    batch = [ObjectData(job_key(JOB, "inputs", "a.png"), b"a"), ObjectData("inputs/link/b", b"b")]
    with pytest.raises(InvalidKeyError, match="outside the storage root"):
        await storage.put_many(batch)
    assert list(outside.iterdir()) == []


async def test_a_planted_file_symlink_is_not_followed(storage: LocalStorage, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not yours")
    key = job_key(JOB, "inputs", "face.png")
    await storage.put_bytes(key, b"x")
    planted = storage.root / key
    planted.unlink()
    planted.symlink_to(secret)
    with pytest.raises(InvalidKeyError, match="symlink"):
        [chunk async for chunk in storage.iter_bytes(key)]
    with pytest.raises(InvalidKeyError, match="symlink"):
        await storage.put_bytes(key, b"y")
    assert secret.read_bytes() == b"not yours"


async def test_delete_prefix_refuses_broad_prefixes(storage: LocalStorage):
    await storage.put_bytes(job_key(JOB, "inputs", "a.jpg"), b"a")
    for prefix in ["", "/", "inputs", "../"]:
        with pytest.raises(InvalidKeyError):
            await storage.delete_prefix(prefix)
    assert await storage.exists(job_key(JOB, "inputs", "a.jpg"))


async def test_presigned_upload_round_trip(storage: LocalStorage):
    key = job_key(JOB, "inputs", "t1.jpg")
    request = await storage.presign_put(key, "image/jpeg", 1000, timedelta(minutes=5))
    assert request.method == "PUT"
    assert request.url.startswith("/uploads/")
    assert request.headers == {"Content-Type": "image/jpeg"}
    token = request.url.removeprefix("/uploads/")

    granted_key, max_bytes = storage.verify_upload_token(token)
    assert (granted_key, max_bytes) == (key, 1000)
    assert await storage.put_stream(granted_key, chunks_of(b"abc", b"def"), max_bytes) == 6
    assert (await storage.stat(key)).size == 6
    assert await storage.presign_get(key, timedelta(minutes=5)) is None


async def test_upload_over_the_limit_keeps_nothing(storage: LocalStorage):
    key = job_key(JOB, "inputs", "big.jpg")
    with pytest.raises(ObjectTooLargeError):
        await storage.put_stream(key, chunks_of(b"x" * 600, b"x" * 600), 1000)
    assert not await storage.exists(key)
    assert list((storage.root / "inputs" / str(JOB)).iterdir()) == []


async def test_expired_upload_token_is_refused(storage: LocalStorage, clock: Clock):
    request = await storage.presign_put(
        job_key(JOB, "inputs", "t1.jpg"), "image/jpeg", 10, timedelta(seconds=60)
    )
    clock.now += 61
    with pytest.raises(UploadTokenExpiredError):
        storage.verify_upload_token(request.url.removeprefix("/uploads/"))


async def test_forged_or_foreign_tokens_are_refused(storage: LocalStorage, tmp_path: Path):
    request = await storage.presign_put(
        job_key(JOB, "inputs", "t1.jpg"), "image/jpeg", 10, timedelta(seconds=60)
    )
    token = request.url.removeprefix("/uploads/")
    body, signature = token.split(".")
    tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    other_service = LocalStorage(tmp_path / "other", upload_secret=b"o" * 32)
    for bad in [tampered, token + "x", "", "not-a-token", "a.b.c", "é.é"]:
        with pytest.raises(InvalidUploadTokenError):
            storage.verify_upload_token(bad)
    with pytest.raises(InvalidUploadTokenError, match="signature"):
        other_service.verify_upload_token(token)


def test_short_upload_secret_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        LocalStorage(tmp_path, upload_secret=b"short")


async def test_check_passes_on_a_writable_root(storage: LocalStorage):
    await storage.check()


async def test_put_file_links_instead_of_copying_and_makes_the_object_private(
    storage: LocalStorage, tmp_path: Path
):
    source = tmp_path / "result.mp4"
    source.write_bytes(b"video bytes")
    source.chmod(0o644)
    key = job_key(JOB, "outputs", "result.mp4")
    await storage.put_file(key, source)
    stored = storage.root / key
    assert stored.stat().st_ino == source.stat().st_ino  # one file, two names: no copy
    assert stored.stat().st_mode & 0o777 == 0o600
    source.unlink()  # the caller's name goes, the object stays
    assert stored.read_bytes() == b"video bytes"
    assert sorted(p.name for p in stored.parent.iterdir()) == ["result.mp4"]


async def test_get_file_link_keeps_its_content_when_the_object_is_replaced(
    storage: LocalStorage, tmp_path: Path
):
    key = job_key(JOB, "inputs", "target.png")
    await storage.put_bytes(key, b"first")
    fetched = tmp_path / "work" / "target.png"
    await storage.get_file(key, fetched)
    assert fetched.stat().st_ino == (storage.root / key).stat().st_ino
    await storage.put_bytes(key, b"second")  # objects are replaced by a rename, never edited
    assert fetched.read_bytes() == b"first"
    assert (storage.root / key).read_bytes() == b"second"


async def test_files_are_copied_where_links_cannot_be_made(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "links not allowed here")

    monkeypatch.setattr(os, "link", refuse)
    source = tmp_path / "result.png"
    source.write_bytes(b"output")
    key = job_key(JOB, "outputs", "result.png")
    await storage.put_file(key, source)
    fetched = tmp_path / "work" / "copy.png"
    await storage.get_file(key, fetched)
    inodes = {path.stat().st_ino for path in (source, storage.root / key, fetched)}
    assert len(inodes) == 3
    assert fetched.read_bytes() == b"output"
    assert not [p for p in (storage.root / key).parent.iterdir() if p.name.startswith(".tmp-")]


async def test_a_path_swapped_before_the_link_is_not_what_gets_stored(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    source = tmp_path / "result.png"
    source.write_bytes(b"the opened file")
    planted = tmp_path / "planted.png"
    planted.write_bytes(b"something else")
    real_link = os.link

    def swap_then_link(src: str | Path, dst: str | Path, **kwargs: bool) -> None:
        os.replace(planted, source)  # another file takes the name after it was opened
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", swap_then_link)
    key = job_key(JOB, "outputs", "result.png")
    await storage.put_file(key, source)
    assert (storage.root / key).read_bytes() == b"the opened file"
    assert [p.name for p in (storage.root / key).parent.iterdir()] == ["result.png"]
