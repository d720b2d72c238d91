"""Small helpers the API tests share: submitting and waiting like a client would."""

import asyncio

import httpx

from tests.app.pipeline_doubles import png_bytes

TERMINAL = {"succeeded", "failed", "canceled"}


def multipart(seed: int = 2, **fields: str) -> dict:
    return {
        "files": [
            ("source", ("source.png", png_bytes(1), "image/png")),
            ("target", ("target.png", png_bytes(seed), "image/png")),
        ],
        "data": fields,
    }


async def submit(client: httpx.AsyncClient, seed: int = 2, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    return await client.post("/jobs", headers=headers, **multipart(seed, **kwargs))


async def wait_until(client, job_id, states=TERMINAL, headers=None, timeout_s=60.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = (await client.get(f"/jobs/{job_id}", headers=headers or {})).json()
        if body["state"] in states:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} still {body['state']} after {timeout_s}s")
        await asyncio.sleep(0.05)
