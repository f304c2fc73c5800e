"""Policy files: YAML (`version: 1`) enabling one or more policies, validated with file:line errors.

```yaml
version: 1
name: cheaper routing          # optional label shown in reports (default: the file name)
routing: {...}                 # each policy key of the registry, all optional
truncation: {...}
```
The JSON Schema of the file is generated from the same pydantic models (`policy_json_schema`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..config import load_yaml_model, validate_mapping
from ..errors import ConfigError
from .registry import STACK

SCHEMA_ID = "https://github.com/costscope/costscope/schemas/policy-v1.json"


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1] = Field(description="Policy file format version: 1.")
    name: str | None = Field(default=None, description="Label of this scenario in reports (default: the file name).")
    description: str | None = Field(default=None, description="Free text, shown in markdown reports.")


PolicyFileModel: type[_Header] = create_model(  # type: ignore[call-overload]
    "PolicyFile",
    __base__=_Header,
    **{
        module.NAME: (module.Config | None, Field(default=None, description=(module.__doc__ or "").strip()))
        for module in STACK
    },
)


@dataclass(frozen=True)
class Scenario:
    """One policy file, validated: its label and the enabled policies' settings in stack order."""

    name: str
    description: str | None
    policies: tuple[tuple[str, Any], ...]
    source: str
    raw: dict[str, Any]
    """The file's mapping as read (for --sweep, which rewrites one value and validates again)."""

    @property
    def enabled(self) -> list[str]:
        return [name for name, _ in self.policies]

    def only(self, name: str) -> Scenario:
        """The same scenario with one policy enabled: for the technique-alone rows."""
        return Scenario(
            self.name, self.description, tuple(p for p in self.policies if p[0] == name), self.source, self.raw
        )


def _scenario(model: _Header, source: str, raw: dict[str, Any]) -> Scenario:
    policies = tuple((m.NAME, getattr(model, m.NAME)) for m in STACK if getattr(model, m.NAME) is not None)
    return Scenario(model.name or Path(source).stem, model.description, policies, source, raw)


def load_policy_file(path: str | Path) -> Scenario:
    """Read and validate one policy file; ConfigError names the file, line and key of the first problem."""
    model = load_yaml_model(path, PolicyFileModel, "policy file")
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return _scenario(model, str(path), raw)


def with_value(scenario: Scenario, key: str, value: Any) -> Scenario:
    """The scenario with one setting replaced (`key` is a dotted path, or a setting name unique in the file)."""
    path = resolve_key(scenario.raw, key)
    raw = json.loads(json.dumps(scenario.raw))
    node = raw
    for part in path[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value
    model = validate_mapping(raw, PolicyFileModel, "policy file", f"{scenario.source} with {key}={value}")
    return (
        _scenario(model, scenario.source, raw)
        if scenario.name == Path(scenario.source).stem
        else Scenario(
            scenario.name, scenario.description, _scenario(model, scenario.source, raw).policies, scenario.source, raw
        )
    )


def resolve_key(raw: dict[str, Any], key: str) -> list[str]:
    """The path of `key` in the file: itself when dotted (`routing.escalation_rate`), else the one setting with
    that name anywhere in the file (`threshold`)."""
    if "." in key:
        return key.split(".")
    found: list[list[str]] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key:
                    found.append([*path, k])
                walk(v, [*path, str(k)])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, str(i)])

    walk(raw, [])
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(
            f"--sweep: no setting named {key!r} in the policy file",
            hint="name it with its path, e.g. routing.escalation_rate",
        )
    paths = ", ".join(".".join(p) for p in found)
    raise ConfigError(f"--sweep: {key!r} is ambiguous ({paths})", hint="name it with its full dotted path")


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version-1 policy file."""
    schema = PolicyFileModel.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
