"""``enclave jobs``: the SDK from the command line, against the real mTLS service."""

import json
import uuid
from pathlib import Path

import pytest
from enclave_client import JobOptions

from app.cli import EXIT_BAD_INPUT, EXIT_FAILURE, CommandError
from app.cli import main as enclave
from app.jobs_cli import CONNECTION_VARIABLES, parse_options


def connection(service, name: str = "alice") -> list[str]:
    tls = service.tls(name)
    return [
        "--url",
        service.url,
        "--cert",
        str(tls["cert"]),
        "--key",
        str(tls["key"]),
        "--ca",
        str(tls["ca"]),
    ]


def test_submit_wait_and_save_the_output(service, images, tmp_path, capsys):
    source, target = images
    output = tmp_path / "swapped.png"
    code = enclave(
        [
            "jobs",
            "submit",
            "-s",
            str(source),
            "-t",
            str(target),
            "--option",
            "face_selector_mode=one",
            "--option",
            "face-mask-padding=1,2,3,4",
            "--wait",
            "--poll-interval",
            "0.05",
            "--output",
            str(output),
            *connection(service),
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    job_id = out[0]
    assert uuid.UUID(job_id) and out[-1] == str(output)
    assert output.read_bytes() == target.read_bytes()

    assert enclave(["jobs", "status", job_id, "--json", *connection(service)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "succeeded"
    assert shown["options"]["face_selector_mode"] == "one"
    assert shown["options"]["face_mask_padding"] == [1, 2, 3, 4]


def test_status_wait_and_download_read_the_connection_from_the_environment(
    service, images, tmp_path, capsys, monkeypatch
):
    with service.client() as client:
        job = client.submit(*images)
    tls = service.tls("alice")
    for name, variable in CONNECTION_VARIABLES.items():
        monkeypatch.setenv(variable, service.url if name == "url" else str(tls[name]))

    assert enclave(["jobs", "wait", job.id, "--poll-interval", "0.05"]) == 0
    assert enclave(["jobs", "status", job.id]) == 0
    status = capsys.readouterr().out
    assert "state     succeeded" in status and f"id        {job.id}" in status
    assert enclave(["jobs", "download", job.id, "-o", str(tmp_path)]) == 0
    saved = capsys.readouterr().out.strip()
    assert saved.startswith(str(tmp_path))
    assert Path(saved).read_bytes() == images[1].read_bytes()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["status", str(uuid.uuid4())], EXIT_BAD_INPUT, "Job not found: no job"),
        (["status", "not-a-job"], EXIT_BAD_INPUT, "'not-a-job' is not a job id"),
        (["download", str(uuid.uuid4()), "-o", "x.png"], EXIT_BAD_INPUT, "Job not found"),
        (
            ["submit", "-s", "SOURCE", "-t", "TARGET", "--option", "face_selector_mode=all"],
            EXIT_BAD_INPUT,
            "options.face_selector_mode: Input should be 'one', 'many' or 'reference'",
        ),
        (["submit", "-s", "missing.png", "-t", "TARGET"], EXIT_BAD_INPUT, "no such input file"),
        (
            ["submit", "-s", "SOURCE", "-t", "TARGET", "--option", "colour=blue"],
            EXIT_BAD_INPUT,
            "unknown option 'colour'",
        ),
        (
            ["submit", "-s", "SOURCE", "-t", "TARGET", "--option", "keep_fps=maybe"],
            EXIT_BAD_INPUT,
            "--option keep_fps: 'maybe' is not true or false",
        ),
    ],
)
def test_failures_are_one_line_and_an_exit_code(service, images, capsys, argv, code, message):
    names = {"SOURCE": str(images[0]), "TARGET": str(images[1])}
    argv = [names.get(part, part) for part in argv]
    assert enclave(["jobs", *argv, *connection(service)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("enclave: error: ")
    assert message in err


def test_a_failed_job_fails_the_command(tmp_path, pki, images, capsys):
    from tests.app.pipeline_doubles import no_face
    from tests.sdk.conftest import live_service

    with live_service(pki, tmp_path / "svc", process_file=no_face) as live:
        argv = ["jobs", "submit", "-s", str(images[0]), "-t", str(images[1]), "--wait"]
        assert enclave([*argv, "--poll-interval", "0.05", *connection(live)]) == EXIT_FAILURE
    err = capsys.readouterr().err.strip()
    assert err.startswith("enclave: error: job ") and "failed: bad_input: no face" in err


def test_connection_problems_are_reported_before_any_request(tmp_path, capsys, monkeypatch):
    for variable in CONNECTION_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    job = str(uuid.uuid4())
    assert enclave(["jobs", "status", job]) == EXIT_BAD_INPUT
    assert "pass --url or set ENCLAVE_URL" in capsys.readouterr().err
    missing = tmp_path / "none.pem"
    url = "https://127.0.0.1:9"
    assert enclave(["jobs", "status", job, "--url", url, "--cert", str(missing)]) == 2
    assert f"--cert: no such file: {missing}" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    assert enclave(["jobs", "status", job, "--url", url, "--ca", str(garbage)]) == 2
    assert "cannot use the TLS files" in capsys.readouterr().err
    assert enclave(["jobs", "status", job, "--url", url, "--request-timeout", "2"]) == 1
    assert "could not reach https://127.0.0.1:9" in capsys.readouterr().err


def test_options_are_read_as_their_types():
    options = parse_options(
        [
            "frame_processors=face_swapper, face_enhancer",
            "face_detector_score=0.7",
            "frame_enhancer_scale=2",
            "keep_fps=false",
            "face_detector_model=yunet",
        ]
    )
    assert options == JobOptions(
        frame_processors=("face_swapper", "face_enhancer"),
        face_detector_score=0.7,
        frame_enhancer_scale=2,
        keep_fps=False,
        face_detector_model="yunet",
    )
    with pytest.raises(CommandError, match="NAME=VALUE"):
        parse_options(["face_selector_mode"])
    with pytest.raises(CommandError, match="output_image_quality"):
        parse_options(["output_image_quality=high"])
