"""The OpenAPI document and the schema files cannot drift apart, and the server keeps to them.

(a) schema/openapi.json holds no body schema of its own: every request and response body of
    the API is a ``$ref`` into request.schema.json or response.schema.json.
(b) The bundled document served at GET /openapi.json resolves every ``$ref`` inside itself and
    carries the request schema, every response ``$def`` and every operation of the source
    files unchanged (compared after following references on both sides).
(c) The bundled document is a valid OpenAPI 3.1 document (the OAS 3.1 meta-schema that
    Schemathesis ships, no network), and every schema in it and in the files is a valid
    JSON Schema 2020-12.
(d) Every status the server answers on an operation is declared there, and every JSON body
    validates against the schema declared for that status: each built-in scenario (picked by
    header and by test key), every refusal and error path, images fresh, cached and expired.
    Conversely every declared status is produced by some request.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mock_server import Clock, Scenario, Settings, create_app, faults
from mock_server.faults import Fault
from mock_server.scenarios import BUILT_IN, SCENARIO_HEADER, TEST_KEY_PREFIX, ScenarioBook
from tests.conftest import REPO

SCHEMA_DIR = REPO / "schema"
REQUEST_FILE = "request.schema.json"
RESPONSE_FILE = "response.schema.json"
OPENAPI_FILE = "openapi.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

KEY = "sk-test-contract"
OTHER_KEY = "sk-test-contract-other"
BODY = {
    "prompt": "cinematic still woman holding mango juice",
    "samples": 2,
    "width": 64,
    "height": 64,
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA = re.compile(r"^application/(.+\+)?json$")

# Operations that are not part of the API proper: the document itself.
META_OPERATIONS = {("/openapi.json", "get")}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, node) in a document."""
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{where}/{_escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(document: Any, fragment: str) -> Any:
    """Resolve a JSON pointer fragment ("/a/b", no leading '#'); KeyError if it does not."""
    node = document
    for raw in fragment.split("/")[1:] if fragment else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(f"{fragment!r}: no {token!r}")
    return node


@cache
def _served() -> dict[str, Any]:
    """GET /openapi.json from the app, in process."""

    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(Settings())), base_url="http://mock.test"
        ) as client:
            response = await client.get("/openapi.json")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        document: dict[str, Any] = response.json()
        return document

    return anyio.run(fetch)


@pytest.fixture
def served() -> dict[str, Any]:
    return json.loads(json.dumps(_served()))  # a copy a test may not spoil for the others


# -- (a) the source document only points at the schema files --------------------------------


def _file_ref_target(ref: str) -> tuple[str, str]:
    """(file, pointer) of a reference from openapi.json into a schema file."""
    file, _, fragment = ref.partition("#")
    assert file in (REQUEST_FILE, RESPONSE_FILE), f"$ref {ref!r} points outside the schema files"
    return file, fragment


def test_source_document_has_no_schemas_of_its_own() -> None:
    source = _load(OPENAPI_FILE)
    assert "schemas" not in source.get("components", {}), (
        "schema/openapi.json defines components.schemas; body schemas belong in the schema files"
    )
    refs = [
        (where, node["$ref"])
        for where, node in _walk(source)
        if isinstance(node, dict) and "$ref" in node
    ]
    assert refs, "schema/openapi.json references no schema file"
    for where, ref in refs:
        file, fragment = _file_ref_target(ref)
        try:
            _pointer(_load(file), fragment)
        except (KeyError, IndexError, ValueError) as exc:
            pytest.fail(f"{where}: $ref {ref!r} does not resolve: {exc}")


def test_every_body_schema_is_a_reference_into_the_schema_files() -> None:
    source = _load(OPENAPI_FILE)
    response_defs = _load(RESPONSE_FILE)["$defs"]
    problems: list[str] = []
    for path, method, operation in _operations(source):
        label = f"{method.upper()} {path}"
        if (path, method) in META_OPERATIONS:
            continue
        body = operation.get("requestBody")
        if body is not None:
            for media, content in body["content"].items():
                if content.get("schema") != {"$ref": REQUEST_FILE}:
                    problems.append(
                        f"{label} request {media}: {content.get('schema')!r} "
                        f"is not {{'$ref': {REQUEST_FILE!r}}}"
                    )
        for status, response in operation["responses"].items():
            content = response.get("content")
            if status == "304":
                if content:
                    problems.append(
                        f"{label} {status}: a 304 carries no body, yet content is declared"
                    )
                continue
            if not content:
                problems.append(f"{label} {status}: no body declared (the server always sends one)")
                continue
            for media, entry in content.items():
                schema = entry.get("schema")
                where = f"{label} {status} {media}"
                if JSON_MEDIA.match(media):
                    ref = schema.get("$ref") if isinstance(schema, dict) else None
                    prefix = f"{RESPONSE_FILE}#/$defs/"
                    if schema != {"$ref": ref} or not str(ref).startswith(prefix):
                        problems.append(
                            f"{where}: inline schema {schema!r}; "
                            f"expected {{'$ref': '{prefix}<Name>'}}"
                        )
                    elif str(ref)[len(prefix) :] not in response_defs:
                        problems.append(f"{where}: {ref!r} names no $def of {RESPONSE_FILE}")
                # A binary body is described, not modelled: a string of that media type.
                elif schema != {"type": "string", "contentMediaType": media}:
                    problems.append(
                        f"{where}: expected {{'type': 'string', 'contentMediaType': {media!r}}}, "
                        f"got {schema!r}"
                    )
    assert not problems, "\n".join(problems)


# -- (b) the served document: self-contained, and the files unchanged inside it ---------------


def test_served_document_resolves_every_reference_inside_itself(served: dict[str, Any]) -> None:
    problems: list[str] = []
    for where, node in _walk(served):
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str) or not ref.startswith("#/"):
                problems.append(f"{where}: $ref {ref!r} is not a pointer into this document")
                continue
            try:
                _pointer(served, ref[1:])
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"{where}: $ref {ref!r} does not resolve: {exc}")
        if where.startswith("#/components/schemas/") and "$id" in node:
            problems.append(
                f"{where}: $id {node['$id']!r} would move the base of the references below it"
            )
    assert not problems, "\n".join(problems)


class _Expander:
    """Replace every $ref by what it points at, so two documents can be compared by content.

    ``resolve(ref, base)`` returns ``(target, base of the target, is a whole file)``. A whole
    schema file loses ``$schema``, ``$id`` and ``$defs`` on the way in: a bundle has to move
    them (its ``$defs`` become components, followed through the references anyway).
    """

    FILE_ROOT_KEYS = ("$schema", "$id", "$defs")

    def __init__(self, resolve: Callable[[str, str], tuple[Any, str, bool]]) -> None:
        self.resolve = resolve

    def expand(self, node: Any, base: str, stack: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [self.expand(item, base, stack) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: self.expand(v, base, stack) for k, v in node.items() if k != "$ref"}
        ref = node.get("$ref")
        if isinstance(ref, str):
            target, target_base, whole_file = self.resolve(ref, base)
            name = ref.rstrip("/").rsplit("/", 1)[-1]
            key = f"{target_base}|{id(target)}"
            if key in stack:
                out["$ref"] = {"$recursive": name}
            else:
                if whole_file:
                    target = {k: v for k, v in target.items() if k not in self.FILE_ROOT_KEYS}
                out["$ref"] = self.expand(target, target_base, (*stack, key))
        return out


def _source_expander() -> _Expander:
    files = {name: _load(name) for name in (OPENAPI_FILE, REQUEST_FILE, RESPONSE_FILE)}

    def resolve(ref: str, base: str) -> tuple[Any, str, bool]:
        file, _, fragment = ref.partition("#")
        file = file or base
        return _pointer(files[file], fragment), file, not fragment

    return _Expander(resolve)


def _served_expander(served: dict[str, Any]) -> _Expander:
    def resolve(ref: str, base: str) -> tuple[Any, str, bool]:
        assert ref.startswith("#/"), ref
        return _pointer(served, ref[1:]), "served", False

    return _Expander(resolve)


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                side = "file" if key in a else "served document"
                return f"{where}/{_escape(key)}: only in the {side}"
            found = _first_difference(a[key], b[key], f"{where}/{_escape(key)}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items in the file, {len(b)} served"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{where}/{index}")
            if found:
                return found
        return None
    if type(a) is not type(b) or a != b:
        return f"{where}: {a!r} in the file, {b!r} served"
    return None


def test_served_request_schema_is_the_file(served: dict[str, Any]) -> None:
    pointer = "/paths/~1sdxl~1text2image~1v1/post/requestBody/content/application~1json/schema"
    served_body = _served_expander(served).expand(_pointer(served, pointer), "served")
    file_body = _source_expander().expand({"$ref": REQUEST_FILE}, OPENAPI_FILE)
    assert served_body == file_body, _first_difference(file_body, served_body)


@pytest.mark.parametrize("file", [REQUEST_FILE, RESPONSE_FILE])
def test_served_components_hold_every_def_of_the_file(served: dict[str, Any], file: str) -> None:
    components = served["components"]["schemas"]
    file_expander, served_expander = _source_expander(), _served_expander(served)
    problems = []
    for name in _load(file).get("$defs", {}):
        if name not in components:
            problems.append(f"{file} $defs/{name}: missing from components.schemas")
            continue
        mine = file_expander.expand({"$ref": f"{file}#/$defs/{name}"}, OPENAPI_FILE)
        theirs = served_expander.expand({"$ref": f"#/components/schemas/{name}"}, "served")
        if mine != theirs:
            problems.append(f"{file} $defs/{name}: {_first_difference(mine, theirs)}")
    assert not problems, "\n".join(problems)


def test_served_document_is_the_source_document_bundled(served: dict[str, Any]) -> None:
    """Paths, security, info...: all of openapi.json, with each reference's target unchanged."""
    source = _load(OPENAPI_FILE)
    served_rest = dict(served)
    served_rest["components"] = {k: v for k, v in served["components"].items() if k != "schemas"}
    if not served_rest["components"] and "components" not in source:
        del served_rest["components"]
    mine = _source_expander().expand(source, OPENAPI_FILE)
    theirs = _served_expander(served).expand(served_rest, "served")
    assert mine == theirs, _first_difference(mine, theirs)


# -- (c) valid OpenAPI 3.1, valid JSON Schema 2020-12 ------------------------------------------


def _openapi_31_meta_schema() -> dict[str, Any]:
    # The official OAS 3.1 schema (spec.openapis.org/oas/3.1/schema/2022-10-07), as shipped
    # inside Schemathesis; it leaves Schema Objects to their dialect, checked separately below.
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    meta: dict[str, Any] = OPENAPI_31
    assert meta["$id"].startswith("https://spec.openapis.org/oas/3.1/schema/")
    return meta


@pytest.mark.parametrize("which", ["served", "source"])
def test_document_is_valid_openapi_31(served: dict[str, Any], which: str) -> None:
    document = served if which == "served" else _load(OPENAPI_FILE)
    assert document["openapi"].startswith("3.1.")
    assert document.get("jsonSchemaDialect") == DIALECT
    meta = _openapi_31_meta_schema()
    validator = validator_for(meta)(meta)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    assert not errors, "\n".join(errors[:20])


def _schema_objects(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every Schema Object of an OpenAPI document (components, bodies, parameters, headers)."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        yield f"components/schemas/{name}", schema
    for path, method, operation in _operations(document):
        label = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            yield f"{label} parameter {parameter['name']}", parameter["schema"]
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            yield f"{label} request {media}", content["schema"]
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                yield f"{label} {status} {media}", content["schema"]
            for header, spec in response.get("headers", {}).items():
                yield f"{label} {status} header {header}", spec["schema"]


def test_every_schema_object_is_valid_2020_12(served: dict[str, Any]) -> None:
    found = list(_schema_objects(served))
    assert len(found) > 20
    for where, schema in found:
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:
            pytest.fail(f"{where}: {exc}")


@pytest.mark.parametrize("file", [REQUEST_FILE, RESPONSE_FILE])
def test_schema_file_is_valid_2020_12(file: str) -> None:
    schema = _load(file)
    assert schema["$schema"] == DIALECT
    Draft202012Validator.check_schema(schema)
    # Local references inside a file resolve inside that file.
    for where, node in _walk(schema):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            assert ref.startswith("#/"), f"{file} {where}: $ref {ref!r} leaves the file"
            _pointer(schema, ref[1:])


# -- (d) every status the server answers is declared, every body is valid -------------------


@dataclass
class Contract:
    """Checks each response against the served document; collects what it finds."""

    document: dict[str, Any]
    observed: set[tuple[str, str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.registry: Registry[Any] = Registry().with_resource(
            "urn:ipmock:openapi",
            Resource.from_contents(self.document, default_specification=DRAFT202012),
        )
        self.templates = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$"), p)
            for p in self.document["paths"]
        ]

    def template(self, path: str) -> str:
        matches = [template for pattern, template in self.templates if pattern.match(path)]
        assert matches, f"{path} matches no path of the document"
        return matches[0]

    def _validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"urn:ipmock:openapi#{pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def check(self, response: httpx.Response) -> httpx.Response:
        method = response.request.method.lower()
        template = self.template(response.request.url.path)
        status = str(response.status_code)
        label = f"{method.upper()} {template} -> {status}"
        operation = self.document["paths"][template].get(method)
        if operation is None:
            self.problems.append(f"{label}: no such operation declared")
            return response
        responses = operation["responses"]
        key = next((k for k in (status, f"{status[0]}XX", "default") if k in responses), None)
        if key is None:
            self.problems.append(
                f"{label}: status not declared (declared: {', '.join(responses)}); "
                f"body {response.text[:200]}"
            )
            return response
        self.observed.add((template, method, key))
        declared = responses[key]
        base = f"/paths/{_escape(template)}/{method}/responses/{_escape(key)}"
        content = declared.get("content", {})
        if not content:
            if response.content:
                self.problems.append(
                    f"{label}: declared without a body, got {len(response.content)} bytes"
                )
            return response
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media not in content:
            self.problems.append(f"{label}: Content-Type {media!r}, declared {sorted(content)}")
            return response
        if JSON_MEDIA.match(media):
            try:
                body = response.json()
            except ValueError:
                self.problems.append(f"{label}: body is not JSON: {response.text[:200]}")
                return response
            validator = self._validator(f"{base}/content/{_escape(media)}/schema")
            for error in validator.iter_errors(body):
                self.problems.append(
                    f"{label}: body {'/'.join(map(str, error.absolute_path)) or '(root)'}: "
                    f"{error.message}"
                )
        elif media == "image/png" and not response.content.startswith(b"\x89PNG\r\n\x1a\n"):
            self.problems.append(f"{label}: not a PNG")
        for name, spec in declared.get("headers", {}).items():
            value = response.headers.get(name)
            if value is None:
                if spec.get("required"):
                    self.problems.append(f"{label}: required header {name} missing")
                continue
            schema = spec.get("schema", {})
            parsed: Any = value
            if schema.get("type") == "integer":
                if not re.fullmatch(r"-?[0-9]+", value):
                    self.problems.append(f"{label}: header {name}={value!r} is not an integer")
                    continue
                parsed = int(value)
            for error in self._validator(f"{base}/headers/{_escape(name)}/schema").iter_errors(
                parsed
            ):
                self.problems.append(f"{label}: header {name}={value!r}: {error.message}")
        return response

    def declared(self) -> set[tuple[str, str, str]]:
        return {
            (path, method, status)
            for path, method, operation in _operations(self.document)
            for status in operation["responses"]
        }

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(dict.fromkeys(self.problems))


@pytest.fixture
def contract(served: dict[str, Any]) -> Contract:
    return Contract(served)


@pytest.fixture
def open_client(clock: Clock) -> Callable[..., httpx.AsyncClient]:
    """A client for a fresh app with these Settings fields and the test's frozen clock.

    A crash in the app reaches the test as the exception (not as a declared-looking 500).
    """

    def make(book: ScenarioBook | None = None, **settings: Any) -> httpx.AsyncClient:
        app = create_app(Settings(**settings), clock=clock, book=book)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mock.test"
        )

    return make


@pytest.fixture
async def client(open_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client() as c:
        yield c


def _status_path(job_id: str) -> str:
    return f"/sdxl/text2image/v1/status/{job_id}"


async def _drive_scenario(
    client: httpx.AsyncClient, contract: Contract, clock: Clock, name: str, by: str
) -> None:
    """Submit under one scenario (chosen by header or by test key), then follow the job."""
    scenario = next(s for s in BUILT_IN if s.name == name)
    if by == "header":
        key, selector = KEY, {SCENARIO_HEADER: name}
    else:
        key, selector = f"{TEST_KEY_PREFIX}{name}", {}
    submit = contract.check(
        await client.post("/sdxl/text2image/v1", json=BODY, headers={"API-Key": key, **selector})
    )
    # The same selector on the status endpoint: a refusal answers there too.
    contract.check(await client.get(_status_path("x" * 24), headers={"API-Key": key, **selector}))
    if scenario.refusal is not None:
        assert submit.status_code == scenario.refusal.http_status, submit.text
        if scenario.refusal.retry_after is not None:
            assert submit.headers.get("Retry-After") == str(scenario.refusal.retry_after)
        return
    assert submit.status_code in (200, 202), submit.text
    job = submit.json()
    polls = 0
    while job["status"] == "PENDING" and polls < 5:
        clock.advance(11)  # past pending-10s; far from the job TTL
        response = contract.check(
            await client.get(_status_path(job["id"]), headers={"API-Key": key})
        )
        polls += 1
        if response.status_code != 200:
            assert name == "expired" and response.status_code == 410, response.text
            return
        job = response.json()
    # Another key never sees the job.
    contract.check(await client.get(_status_path(job["id"]), headers={"API-Key": OTHER_KEY}))
    if job["status"] != "SUCCESS":
        # No image for a job without one.
        contract.check(await client.get(f"/images/{job['id']}/0.png"))
        return
    urls = job["download_urls"]
    assert len(urls) == BODY["samples"]
    for index, url in enumerate(urls):
        path = urlsplit(url).path
        headers = {"API-Key": key} if index % 2 else {}  # with and without the key
        image = contract.check(await client.get(path, headers=headers))
        assert image.status_code == 200
        cached = contract.check(
            await client.get(path, headers={"If-None-Match": image.headers["ETag"]})
        )
        assert cached.status_code == 304
    contract.check(await client.get(f"/images/{job['id']}/{BODY['samples']}.png"))  # beyond samples
    contract.check(await client.get(f"/images/{job['id']}/first.png"))
    contract.check(await client.get(f"/images/{'y' * 24}/0.png"))
    clock.advance(Settings().url_ttl + 1)
    expired = contract.check(await client.get(urlsplit(urls[0]).path))
    assert expired.status_code == 410, expired.text


SCENARIOS = [s.name for s in BUILT_IN]


@pytest.mark.anyio
@pytest.mark.parametrize("by", ["header", "key"])
@pytest.mark.parametrize("name", SCENARIOS)
async def test_scenario_answers_are_declared(
    client: httpx.AsyncClient, contract: Contract, clock: Clock, name: str, by: str
) -> None:
    await _drive_scenario(client, contract, clock, name, by)
    contract.assert_clean()


async def _drive_errors(
    open_client: Callable[..., httpx.AsyncClient], contract: Contract, clock: Clock
) -> None:
    """Every refusal that does not come from a scenario."""
    submit = "/sdxl/text2image/v1"
    key = {"API-Key": KEY}
    async with open_client() as client:
        # 401: no key, an empty one
        contract.check(await client.post(submit, json=BODY))
        contract.check(await client.post(submit, json=BODY, headers={"API-Key": "  "}))
        contract.check(await client.get(_status_path("x" * 24)))
        # 400: every way a body can be wrong, and an unknown scenario name
        for raw in (
            b"",
            b"not json",
            b"[]",
            b'{"prompt": 5}',
            b"{}",
            b'{"prompt": "a", "width": 65}',
            b"\xff",
        ):
            response = contract.check(await client.post(submit, content=raw, headers=key))
            assert response.status_code == 400, (raw, response.text)
        unknown = {**key, SCENARIO_HEADER: "no-such-scenario"}
        assert (
            contract.check(await client.post(submit, json=BODY, headers=unknown)).status_code == 400
        )
        contract.check(await client.get(_status_path("x" * 24), headers=unknown))
        contract.check(
            await client.post(submit, json=BODY, headers={"API-Key": "test_no-such-scenario"})
        )
        # 404: unknown job
        assert (
            contract.check(await client.get(_status_path("x" * 24), headers=key)).status_code == 404
        )
        # 200 and 202 under the default scenario, with warnings
        accepted = contract.check(
            await client.post(submit, json={**BODY, "sampels": 2}, headers=key)
        )
        assert accepted.status_code == 202
        # the document itself
        contract.check(await client.get("/openapi.json"))
    # 413: declared by Content-Length, and streamed without one
    async with open_client(max_body_bytes=64) as client:
        big = json.dumps({**BODY, "negative_prompt": "x" * 200}).encode()
        assert (
            contract.check(await client.post(submit, content=big, headers=key)).status_code == 413
        )

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 16):
                yield big[start : start + 16]

        streamed = contract.check(await client.post(submit, content=chunks(), headers=key))
        assert streamed.status_code == 413, streamed.text
    # strict mode refuses what the docs do not promise
    async with open_client(strict=True) as client:
        strict = contract.check(await client.post(submit, json={**BODY, "sampels": 2}, headers=key))
        assert strict.status_code == 400
    # the chaos mix: whatever it picks is declared
    async with open_client(chaos=True, seed=7) as client:
        for _ in range(30):
            contract.check(await client.post(submit, json=BODY, headers=key))


@pytest.mark.anyio
async def test_error_answers_are_declared(
    open_client: Callable[..., httpx.AsyncClient], contract: Contract, clock: Clock
) -> None:
    await _drive_errors(open_client, contract, clock)
    contract.assert_clean()


# A scenario a config file (or the admin queue) may define: every kind of status-request fault,
# extra fields in every answer, its own URL lifetime.
FAULTY = Scenario(
    "faulty",
    pending_polls=2,
    faults=(
        Fault(1, "rate-limited", retry_after=2),
        Fault(2, "busy", retry_after=3),
        Fault(3, "server-error"),
        Fault(4, "delay", seconds=1.5),
        Fault(5, "drop"),
        Fault(1, "rate-limited", retry_after=2, on="download"),
        Fault(2, "busy", retry_after=3, on="download"),
        Fault(3, "server-error", on="download"),
    ),
    extra_fields=True,
    url_ttl=60,
)


async def _drive_faults(
    open_client: Callable[..., httpx.AsyncClient], contract: Contract, clock: Clock
) -> None:
    """Status requests and downloads answered by a configured scenario's faults."""
    book = ScenarioBook(scenarios={**{s.name: s for s in BUILT_IN}, FAULTY.name: FAULTY})
    key = {"API-Key": KEY}
    async with open_client(book=book) as client:
        submit = contract.check(
            await client.post(
                "/sdxl/text2image/v1", json=BODY, headers={**key, SCENARIO_HEADER: FAULTY.name}
            )
        )
        assert submit.status_code == 202, submit.text
        job_id = submit.json()["id"]
        for request in range(1, 9):
            fault = FAULTY.fault_at(request)
            if fault is not None and fault.kind == "drop":
                # Not an HTTP answer: the connection breaks mid-body.
                with pytest.raises(faults.ConnectionDropped):
                    await client.get(_status_path(job_id), headers=key)
                continue
            response = contract.check(await client.get(_status_path(job_id), headers=key))
            if fault is not None and fault.kind in ("rate-limited", "busy"):
                assert response.headers.get("Retry-After") == str(fault.retry_after)
            if response.status_code == 200 and response.json()["status"] == "SUCCESS":
                break
        assert response.json()["status"] == "SUCCESS", response.text
        image = urlsplit(response.json()["download_urls"][0]).path
        for fault in (f for f in FAULTY.faults if f.on == "download"):
            refused = contract.check(await client.get(image))
            assert refused.status_code == {"rate-limited": 429, "busy": 503}.get(fault.kind, 500)
        assert contract.check(await client.get(image)).status_code == 200
        clock.advance(FAULTY.url_ttl + 1)  # type: ignore[operator]
        assert contract.check(await client.get(image)).status_code == 410


@pytest.mark.anyio
async def test_fault_answers_are_declared(
    open_client: Callable[..., httpx.AsyncClient], contract: Contract, clock: Clock
) -> None:
    await _drive_faults(open_client, contract, clock)
    contract.assert_clean()


@pytest.mark.anyio
async def test_every_declared_status_is_produced(
    open_client: Callable[..., httpx.AsyncClient], contract: Contract, clock: Clock
) -> None:
    """The other direction: no declared status is dead (each is answered by some request)."""
    await _drive_errors(open_client, contract, clock)
    await _drive_faults(open_client, contract, clock)
    for name in SCENARIOS:
        for by in ("header", "key"):
            async with open_client() as client:
                await _drive_scenario(client, contract, clock, name, by)
    missing = sorted(contract.declared() - contract.observed)
    assert not missing, f"declared but never answered: {missing}"
