"""Acceptance: the service on its defaults (SQLite, local storage, in-process workers, the
real pipeline), driven only through the SDK over mTLS. Astronaut → t1.jpg must come back a
real swap by the pipeline's own measure: every face looks more like the source than like
the person who was there."""

from pathlib import Path

import pytest
from enclave_client import JobOptions, JobState

from pipeline.embed import cosine_similarity
from pipeline.engine import build_engine
from pipeline.options import FaceSelectorMode, RunOptions
from tests.pipeline.photos import astronaut, read, t1_path, write_astronaut
from tests.pipeline.test_swap_quality import iou
from tests.sdk.conftest import live_service

pytestmark = pytest.mark.slow


def test_astronaut_into_t1_through_the_sdk_is_a_real_swap(pki, model_dir, tmp_path):
    source = write_astronaut(tmp_path)
    with (
        live_service(pki, tmp_path / "svc", process_file=None, model_dir=model_dir) as live,
        live.client(timeout=120) as client,
    ):
        job = client.submit(source, t1_path(), options=JobOptions(face_selector_mode="many"))
        done = client.wait(job, timeout=300, poll_interval=0.5)
        assert done.state is JobState.SUCCEEDED, done.error
        saved = client.download(done, tmp_path / "swapped.jpg")
        same = client.compare(source, source)
        group = client.compare(source, t1_path())

    assert done.summary is not None and done.summary["faces_swapped"] == 6
    assert done.timings  # the worker reported its stages
    swapped, original = read(saved), read(t1_path())
    assert swapped.shape == original.shape

    engine = build_engine(RunOptions(model_dir=model_dir, face_selector_mode=FaceSelectorMode.MANY))
    source_face = engine.prepare_source([(Path("astronaut.png"), astronaut())]).face
    before_faces = engine.analyse(original, with_embedding=True)
    after_faces = engine.analyse(swapped, with_embedding=True)
    assert len(before_faces) == len(after_faces) == 6
    assert source_face.embedding is not None
    for before in before_faces:
        after = max(after_faces, key=lambda face: iou(face.box, before.box))
        assert iou(after.box, before.box) > 0.5
        assert before.embedding is not None and after.embedding is not None
        to_source = cosine_similarity(after.embedding, source_face.embedding)
        to_original = cosine_similarity(after.embedding, before.embedding)
        assert to_source > to_original, (before.box, to_source, to_original)

    assert same.same_person and same.similarity > 0.9 and (same.faces_a, same.faces_b) == (1, 1)
    assert group.faces_b == 6
