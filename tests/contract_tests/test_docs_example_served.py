"""The API docs' own example, run as written against a real `ipmock serve` over its socket:
submit, poll, download. Also: download URLs follow the Host the client used, or --public-url;
and docs/fuzzing.md's example judges by the flow's deadline.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import given, settings

from bench.support.bodies import DOCS_EXAMPLE
from contract_tests.flows import Flow
from contract_tests.strategies import server_flows
from tests.conftest import REPO, running_server
from tests.support.served import TIMEOUT, Api, check_download, png_size

# The second example on the page (under "Status"): four samples, the face adapter.
DOCS_FACE_EXAMPLE: dict[str, Any] = {
    "model_id": "sdxl",
    "prompt": "cinematic still woman holding mango juice. emotional, harmonious, vignette, "
    "highly detailed, high budget, bokeh, cinemascope",
    "negative_prompt": "error, cropped, worst quality, low quality, duplicate, bad proportions, "
    "incomplete subject",
    "num_inference_steps": 20,
    "samples": 4,
    "guidance_scale": 7.5,
    "width": 1024,
    "height": 1024,
    "ip_adapter": ["ip-adapter-plus-face_sdxl_vit-h"],
    "ip_adapter_scale": [0.6],
    "ip_adapter_image": "https://t4.ftcdn.net/jpg/06/44/30/09/"
    "360_F_644300965_7asrChyeknn9fA0GuYrmIUFSBHR5HTpo.jpg",
}

# The first example at another size and sample count: the images follow the request.
DOCS_EXAMPLE_RESIZED = {**DOCS_EXAMPLE, "samples": 2, "width": 640, "height": 384}


@pytest.mark.parametrize(
    "data",
    [DOCS_EXAMPLE, DOCS_FACE_EXAMPLE, DOCS_EXAMPLE_RESIZED],
    ids=["docs-example", "docs-face-example-4-samples", "docs-example-640x384-2-samples"],
)
def test_docs_example_submit_poll_download(server_url: str, data: dict[str, Any]) -> None:
    # The docs' code, pointed at the mock: a JSON string body, no Content-Type.
    url = f"{server_url}/sdxl/text2image/v1"
    headers = {"API-Key": f"docs-reader-{uuid.uuid4().hex}"}  # not a test key: the default
    response = requests.post(url, headers=headers, data=json.dumps(data), timeout=TIMEOUT)
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["status"] == "PENDING", submitted
    job_id = submitted["id"]
    assert isinstance(job_id, str) and job_id
    assert "download_urls" not in submitted and "error" not in submitted

    status_url = f"{url}/status/{job_id}"
    first = requests.get(status_url, headers=headers, timeout=TIMEOUT)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "PENDING"
    assert first.json()["id"] == job_id

    second = requests.get(status_url, headers=headers, timeout=TIMEOUT)
    assert second.status_code == 200, second.text
    done = second.json()
    assert done["status"] == "SUCCESS", done
    assert done["id"] == job_id
    urls = done["download_urls"]
    assert isinstance(urls, list)
    assert len(urls) == data["samples"]
    assert len(set(urls)) == len(urls)
    assert all(u.startswith(f"{server_url}/") for u in urls), urls

    images = [check_download(u, data["width"], data["height"], headers) for u in urls]
    assert len(set(images)) == len(images), "each sample should be its own image"

    # SUCCESS is final: a later poll answers the same.
    third = requests.get(status_url, headers=headers, timeout=TIMEOUT)
    assert third.status_code == 200
    assert third.json()["status"] == "SUCCESS"
    assert third.json()["download_urls"] == urls


def test_download_urls_follow_the_host_the_client_used(
    server_url: str, small_body: dict[str, Any]
) -> None:
    port = urlsplit(server_url).port
    via_localhost = Api(f"http://localhost:{port}")
    response = via_localhost.submit("test_success", small_body)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUCCESS"
    assert body["download_urls"], body
    assert all(u.startswith(f"http://localhost:{port}/images/") for u in body["download_urls"])
    image = requests.get(body["download_urls"][0], timeout=TIMEOUT)
    assert image.status_code == 200
    assert png_size(image.content) == (small_body["width"], small_body["height"])

    # The same job polled through 127.0.0.1 answers URLs on 127.0.0.1.
    polled = Api(server_url).poll("test_success", body["id"])
    assert polled.status_code == 200
    assert all(u.startswith(f"{server_url}/images/") for u in polled.json()["download_urls"])

    # A Host header (a proxy in front of the mock, say) is honoured too.
    aliased = Api(server_url).poll(
        "test_success", body["id"], headers={"Host": "images.alias.test:8443"}
    )
    assert aliased.status_code == 200
    urls = aliased.json()["download_urls"]
    assert all(u.startswith("http://images.alias.test:8443/images/") for u in urls), urls


@pytest.mark.parametrize(
    ("public_url", "base"),
    [
        ("https://mock.example.test", "https://mock.example.test/images/"),
        ("https://gateway.example.test/ipmock/", "https://gateway.example.test/ipmock/images/"),
    ],
)
@pytest.mark.socket
def test_public_url_is_the_base_of_download_urls(
    public_url: str, base: str, small_body: dict[str, Any]
) -> None:
    with running_server("--public-url", public_url) as url:
        api = Api(url)
        submitted = api.submit("test_pending-then-success", small_body)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        assert api.poll("test_pending-then-success", job_id).json()["status"] == "PENDING"
        done = api.poll("test_pending-then-success", job_id)
        assert done.status_code == 200
        urls = done.json()["download_urls"]
        assert len(urls) == 1
        assert all(u.startswith(base) for u in urls), urls
        # Whatever the public base, the path after it is what this server serves.
        path = "/images/" + urls[0][len(base) :]
        image = requests.get(url + path, timeout=TIMEOUT)
        assert image.status_code == 200, image.text
        assert png_size(image.content) == (small_body["width"], small_body["height"])


# docs/fuzzing.md's example, run as written (with the example client it names).


def _docs_fuzz_example() -> str:
    page = (REPO / "docs/fuzzing.md").read_text(encoding="utf-8")
    return page.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_docs_fuzz_example_judges_by_the_flows_deadline() -> None:
    namespace: dict[str, Any] = {"__name__": "docs_fuzz_example"}
    exec(compile(_docs_fuzz_example(), "<docs/fuzzing.md>", "exec"), namespace)
    test = namespace["test_my_client_keeps_the_contract"]
    # A job that never ends: the client must give up at the deadline the check judges by,
    # not at its own 300 s (the example once left ctx.deadline out).
    test.hypothesis.inner_test(flow=Flow(pending_polls=None))
    # And the example's test body on generated flows (40 of them, not its 500).
    few = settings(max_examples=40, deadline=None, database=None)
    given(flow=server_flows())(few(test.hypothesis.inner_test))()
