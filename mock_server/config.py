"""Reads the mock's TOML config file (extra scenarios, rules, chaos) into a ScenarioBook."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from mock_server import contract
from mock_server.exceptions import IpmockError
from mock_server.faults import CHAOS_FAULTS, FaultMix
from mock_server.generators import GENERATE
from mock_server.scenarios import (
    BUILT_IN,
    CHAOS_WEIGHTS,
    Match,
    Rule,
    Scenario,
    ScenarioBook,
    UnknownScenario,
)
from mock_server.words import did_you_mean, leaves, shorten


class ConfigError(IpmockError, ValueError):
    """The config file (or an admin request's scenario) is not usable; says where and why."""


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("mock_server").joinpath("config.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _errors(instance: Any, schema: dict[str, Any], where: str, *, each: bool = False) -> None:
    """ConfigError listing what is wrong with ``instance``, after ``where`` (before each
    problem with ``each``: where is then a path, as an admin request's scenarios.0)."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems: list[str] = []
    for error in validator.iter_errors(instance):
        path = list(error.absolute_path)
        if isinstance(error.instance, float) and not math.isfinite(error.instance):
            continue  # _not_finite says it once; its type and range errors only repeat it
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            problems += _unknown_keys(path, error.instance, error.schema)
        elif error.validator == "enum":
            problems.append(_at(path, error.message + _closest_value(error)))
        elif error.validator == "const" and isinstance(error.schema, dict):
            why = error.schema.get("description")
            wanted = json.dumps(error.validator_value)
            said = f"{json.dumps(shorten(error.instance))} is not {wanted}"
            problems.append(_at(path, f"{said}: {why}" if why else said))
        else:
            problems.append(_at(path, error.message))
    problems += _not_finite(instance)
    if problems and each:
        raise ConfigError("; ".join(f"{where}: {problem}" for problem in problems))
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


def _at(path: list[str | int], message: str) -> str:
    """A problem, after the dotted path of what it is about (none for the whole)."""
    return f"{'.'.join(map(str, path))}: {message}" if path else message


def _unknown_keys(path: list[str | int], instance: dict[str, Any], schema: Any) -> list[str]:
    """What jsonschema words "Additional properties are not allowed": the keys the
    schema does not allow, each with the closest allowed name (a misspelling), then the
    allowed names."""
    allowed = list(schema.get("properties", {})) if isinstance(schema, dict) else []
    unknown = [key for key in instance if key not in allowed]
    named = ", ".join(f"{shorten(key)!r}{did_you_mean(key, allowed)}" for key in unknown[:10])
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    fields = f"field{'s' * (len(unknown) > 1)}"
    return [_at(path, f"unknown {fields} {named}{more}, not one of {', '.join(allowed)}")]


def _closest_value(error: ValidationError) -> str:
    """After jsonschema's "is not one of [...]": the allowed value closest to a
    misspelt one, if any is close."""
    enum = error.validator_value
    allowed = [a for a in enum if isinstance(a, str)] if isinstance(enum, list) else []
    return did_you_mean(error.instance, allowed) if isinstance(error.instance, str) else ""


def _not_finite(instance: Any) -> list[str]:
    """A problem for each infinite or NaN number (TOML's 1e400, inf and nan; JSON's
    Infinity and NaN): JSON Schema's minimum and maximum let them through."""
    return [
        _at(path, f"{value} is not a finite number")
        for path, value in leaves(instance)
        if isinstance(value, float) and not math.isfinite(value)
    ]


def _request_fields() -> list[str]:
    """The request's documented field names, in the contract's order."""
    return list(contract.request_schema()["properties"])


def _references(data: dict[str, Any], scenarios: Mapping[str, Scenario]) -> list[str]:
    """What the schema cannot check: the fields rules match on are request fields, and
    the scenarios the file names (rules, chaos weights, the default) exist."""
    fields = _request_fields()
    problems: list[str] = []
    for i, rule in enumerate(data.get("rules", [])):
        for name in rule["match"]:
            if name not in fields:
                hint = did_you_mean(name, fields)
                problems.append(f"rules.{i}.match: {name!r} is not a request field{hint}")
    named = [(f"rules.{i}.scenario", r["scenario"]) for i, r in enumerate(data.get("rules", []))]
    named += [(f"chaos.weights.{n}", n) for n in data.get("chaos", {}).get("weights", {})]
    if "default_scenario" in data:
        named.append(("default_scenario", data["default_scenario"]))
    problems += [
        f"{where}: {UnknownScenario(name, scenarios)}"
        for where, name in named
        if name not in scenarios
    ]
    return problems


def _redefinitions(data: dict[str, Any], built_in: Mapping[str, Scenario]) -> list[str]:
    """A problem for each ``[[scenarios]]`` entry that takes a built-in scenario's name
    (it would silently change what its test key and the docs promise) or a name an
    earlier entry took."""
    reserved = sorted({*built_in, GENERATE.name})
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data.get("scenarios", [])):
        name = item["name"]
        if name in reserved:
            problems.append(
                f"scenarios.{i}.name: {name!r} is a built-in scenario and cannot be "
                f"redefined; give yours another name (built-in: {', '.join(reserved)})"
            )
        elif name in seen:
            problems.append(
                f"scenarios.{i}.name: {name!r} is already defined by scenarios.{seen[name]}"
            )
        seen.setdefault(name, i)
    return problems


def scenario_from_json(data: Any, where: str = "scenario") -> Scenario:
    """An inline scenario (admin queue, config), checked against the config schema."""
    _errors(data, {"$defs": _schema()["$defs"], "$ref": "#/$defs/scenario"}, where, each=True)
    return Scenario.from_json({"name": "inline", **data})


def queued_scenario(book: ScenarioBook, spec: Any, where: str) -> Scenario:
    """A queue entry, as the admin queue and the in-process harness take one: a scenario
    by name, an inline scenario object (checked as the config file's are) or a Scenario."""
    if isinstance(spec, Scenario):
        return spec
    if isinstance(spec, str):
        try:
            return book.get(spec)
        except UnknownScenario as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if isinstance(spec, dict):
        return scenario_from_json(spec, where)
    raise ConfigError(
        f"{where} must be a scenario name or a scenario object, got {json.dumps(shorten(spec))}"
    )


def fault_mix_from_json(data: Any, *, chaos: bool = False) -> FaultMix | None:
    """The ``[chaos] faults`` table as a FaultMix (schema-checked); without one, the
    built-in mix when ``chaos`` is on, else none. A rate of 0 turns the mix off."""
    if data is None:
        return CHAOS_FAULTS if chaos else None
    _errors(data, {"$defs": _schema()["$defs"], "$ref": "#/$defs/fault_mix"}, "chaos.faults")
    values = dict(data)
    if "kinds" in values:
        values["kinds"] = tuple(values["kinds"])
    if "on" in values:
        on = values["on"]
        values["on"] = (on,) if isinstance(on, str) else tuple(on)
    mix = FaultMix(**values)
    return mix if mix.rate > 0 else None


def load_book(
    path: Path | None,
    *,
    seed: int | None = None,
    chaos: bool = False,
    generating: bool = False,
) -> ScenarioBook:
    """The scenario book for a config file (or none); ``chaos`` turns on the built-in mix.

    ``generating`` (a real model behind the API) adds the ``generate`` scenario and makes
    it the default unless the config file names another.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        _errors(data, _schema(), str(path))
    scenarios = {s.name: s for s in BUILT_IN}
    if generating:
        scenarios[GENERATE.name] = GENERATE
    problems = _redefinitions(data, scenarios)
    for item in data.get("scenarios", []):
        scenarios.setdefault(item["name"], Scenario.from_json(item))
    problems += _references(data, scenarios)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    rules = [
        Rule(
            scenario=r["scenario"],
            matches=tuple(
                Match(name, **cond) if isinstance(cond, dict) else Match(name, equals=cond)
                for name, cond in r["match"].items()
            ),
        )
        for r in data.get("rules", [])
    ]
    weights = data.get("chaos", {}).get("weights") or (CHAOS_WEIGHTS if chaos else None)
    fault_mix = fault_mix_from_json(data.get("chaos", {}).get("faults"), chaos=chaos)
    try:
        return ScenarioBook(
            scenarios=scenarios,
            rules=rules,
            default=data.get(
                "default_scenario", GENERATE.name if generating else "pending-then-success"
            ),
            chaos_weights=weights,
            seed=seed,
            fault_mix=fault_mix,
        )
    except LookupError as exc:
        raise ConfigError(f"{path}: {exc}") from None
