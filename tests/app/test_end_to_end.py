"""The service on its defaults (SQLite, local storage, in-process worker processes) with the
real pipeline: a real swap through the API, and /compare on real photos."""

import json

import cv2
import numpy as np
import pytest

from tests.app.api_client import wait_until
from tests.app.conftest import running_api
from tests.app.media import astronaut_png, insightface_image, t1_bgr
from tests.app.pipeline_doubles import png_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
def real_settings(api_settings, model_dir):
    return api_settings.model_copy(update={"model_dir": model_dir})


async def test_swap_astronaut_into_t1_through_the_api(real_settings) -> None:
    async with running_api(real_settings, process_file=None) as api:
        response = await api.post(
            "/jobs",
            files=[
                ("source", ("astronaut.png", astronaut_png(), "image/png")),
                ("target", ("t1.jpg", insightface_image("t1.jpg").read_bytes(), "image/jpeg")),
            ],
            data={"options": json.dumps({"face_selector_mode": "many"})},
        )
        assert response.status_code == 202, response.text
        done = await wait_until(api, response.json()["id"], timeout_s=120)
        assert done["state"] == "succeeded", done
        assert done["summary"]["faces_swapped"] == 6
        result = await api.get(done["output"]["url"])
        assert result.headers["content-type"] == "image/jpeg"
        swapped = cv2.imdecode(np.frombuffer(result.content, np.uint8), cv2.IMREAD_COLOR)
        original = t1_bgr()
        assert swapped.shape == original.shape
        changed = np.abs(swapped.astype(int) - original.astype(int)).max(axis=2) > 12
        assert 0.005 < changed.mean() < 0.5  # faces changed, not the whole frame


async def test_a_target_without_faces_fails_with_the_reason(real_settings) -> None:
    async with running_api(real_settings, process_file=None) as api:
        response = await api.post(
            "/jobs",
            files=[
                ("source", ("astronaut.png", astronaut_png(), "image/png")),
                ("target", ("noise.png", png_bytes(3, size=64), "image/png")),
            ],
        )
        done = await wait_until(api, response.json()["id"], timeout_s=120)
        assert done["state"] == "failed"
        assert done["error"]["code"] == "bad_input"
        assert "no face" in done["error"]["detail"]
        assert done["attempts"] == 1


async def test_compare_tells_same_and_different_people(real_settings) -> None:
    hanks = insightface_image("Tom_Hanks_54745.png").read_bytes()
    t1 = insightface_image("t1.jpg").read_bytes()
    async with running_api(real_settings, process_file=None) as api:
        same = await api.post(
            "/compare",
            files={"a": ("a.png", hanks, "image/png"), "b": ("b.png", hanks, "image/png")},
        )
        assert same.status_code == 200, same.text
        assert same.json()["same_person"] is True
        assert same.json()["similarity"] > 0.9
        other = await api.post(
            "/compare", files={"a": ("a.png", hanks, "image/png"), "b": ("b.jpg", t1, "image/jpeg")}
        )
        body = other.json()
        assert (body["same_person"], body["faces_a"], body["faces_b"]) == (False, 1, 6)
        assert body["similarity"] < body["threshold"]
        faceless = await api.post(
            "/compare",
            files={
                "a": ("a.png", hanks, "image/png"),
                "b": ("n.png", png_bytes(4, 64), "image/png"),
            },
        )
        assert faceless.status_code == 422
        assert faceless.headers["content-type"] == "application/problem+json"
        assert "no face" in faceless.json()["detail"]
