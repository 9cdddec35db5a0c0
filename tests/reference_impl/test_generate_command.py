"""`python -m reference_impl generate`: --request takes a path or inline JSON, a bad request
is one line and not a traceback, and the gpu extra's known noise is silenced (nothing else)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_request_takes_a_file_or_inline_json(tmp_path: Path) -> None:
    from reference_impl.__main__ import request_body

    body = '{"prompt": "a lighthouse at dusk"}'
    (tmp_path / "req.json").write_text(body, encoding="utf-8")
    assert request_body(str(tmp_path / "req.json")) == body.encode()
    assert request_body(body) == body.encode()


@pytest.mark.parametrize(
    ("request_text", "said"),
    [
        (
            "missing.json",
            "argument --request: 'missing.json' is neither a readable JSON file (No such "
            "file or directory) nor inline JSON (a value starting with '{')",
        ),
        ('{"prompt": ', "--request: the body is not valid JSON"),
        ('{"prompt": ""}', "--request: prompt must be a string"),
    ],
)
def test_a_bad_request_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request_text: str, said: str
) -> None:
    from reference_impl.__main__ import main

    argv = ["generate", str(tmp_path), "--request", request_text, "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exited:
        sys.exit(main(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m reference_impl generate")


@pytest.mark.slow
def test_generate_prints_no_torchvision_or_upcast_vae_noise(tmp_path: Path) -> None:
    from reference_impl.build import build_random_model_dir

    build_random_model_dir("tiny", tmp_path / "models", seed=0)
    request = json.dumps({"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 1})
    argv = ["generate", str(tmp_path / "models"), "--request", request, "--out"]
    argv += [str(tmp_path / "out"), "--device", "cpu", "--dtype", "float16"]  # float16: upcast
    done = subprocess.run(
        [sys.executable, "-m", "reference_impl", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] == 1  # stdout: the one JSON line
    assert "loading SDXL from " in done.stderr and ": 6/6 (100%), " in done.stderr  # progress
    for noise in ("requires torchvision", "upcast_vae"):
        assert noise not in done.stderr


@pytest.mark.slow
def test_build_prints_one_json_line_and_its_progress_on_stderr(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reference_impl", "build", "tiny", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert json.loads(line)["model_dir"] == str(tmp_path / "models" / "sdxl-base")
    assert done.stderr.splitlines()[-1].startswith("random tiny weights (")
    assert " MB (100%), " in done.stderr.splitlines()[-1]


def test_only_the_known_noise_is_silenced(caplog: pytest.LogCaptureFixture) -> None:
    from reference_impl.pipeline import quiet_known_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        warnings.warn("`upcast_vae` is deprecated and will be removed", FutureWarning, stacklevel=1)
        warnings.warn("`other_call` is deprecated and will be removed", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["`other_call` is deprecated and will be removed"]

    logger = logging.getLogger("transformers.utils.import_utils")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("`CLIPImageProcessor` requires torchvision (not installed); falling back")
        logger.warning("`SiglipImageProcessor` requires torchvision (not installed); falling back")
        logger.warning("`CLIPImageProcessor` something else entirely")
    assert caplog.messages == ["`CLIPImageProcessor` something else entirely"]
