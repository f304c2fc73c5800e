"""Loading user YAML files (price overrides, later policies) into pydantic models with line-numbered errors."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at pydantic location `loc` (or of its nearest parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    """Parse `path` with a safe loader and validate it as `model`; errors name file, line and key."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {name}: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(f"{where}: invalid YAML in {what}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        raise ConfigError(f"{name}: the {what} is empty", hint="start it with 'version: 1'")
    return _validate(data, model, what, name, node)


def validate_mapping(data: Any, model: type[M], what: str, name: str) -> M:
    """Validate an in-memory mapping (no line numbers to give): errors name `name`, `what` and the key."""
    return _validate(data, model, what, name, None)


def _did_you_mean(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """A close known key for a misspelt one, following `loc` through nested models where it can."""
    fields = model.model_fields
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = fields[str(part)].annotation if str(part) in fields else None
        nested = next(
            (
                a
                for a in getattr(annotation, "__args__", (annotation,))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if nested is None:
            return ""
        fields = nested.model_fields
    close = difflib.get_close_matches(str(loc[-1]), list(fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validate(data: Any, model: type[M], what: str, name: str, node: yaml.Node | None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(node, loc) if node is not None else None
        where = f"{name}:{line}" if line is not None else name
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key" + _did_you_mean(model, loc)
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {what}: {key}: {message}{more}") from exc
