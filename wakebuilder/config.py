"""Frozen stage configs that round-trip through JSON and YAML.

Each stage has one frozen dataclass of its semantic settings. It is recorded in
every artifact the stage writes and is what the stage's fingerprint hashes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from wakebuilder.errors import ConfigError

C = TypeVar("C", bound="StageConfig")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StageConfig:
    """Base of stage configs: plain, typed, frozen fields only."""

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from a dict; unknown keys, missing required keys and wrong types are a ``ConfigError``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
        missing = sorted(
            name for name, f in fields.items()
            if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ConfigError(f"{cls.__name__}: missing setting(s) {', '.join(missing)}")
        hints = typing.get_type_hints(cls)
        values = {name: _coerce(name, hints[name], value, cls.__name__) for name, value in data.items()}
        return cls(**values)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON (``.json``) or YAML (``.yaml``/``.yml``), atomically."""
        from wakebuilder.atomic import atomic_write_text

        target = Path(path)
        if target.suffix in (".yaml", ".yml"):
            return atomic_write_text(target, yaml.safe_dump(self.to_dict(), sort_keys=True))
        return atomic_write_text(target, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls: type[C], path: str | os.PathLike[str]) -> C:
        """Read a config written by ``save`` (JSON or YAML)."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{source}: config file not found") from exc
        try:
            data = yaml.safe_load(text) if source.suffix in (".yaml", ".yml") else json.loads(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{source}: cannot parse config ({exc})") from exc
        return cls.from_dict(data)


def _coerce(name: str, hint: Any, value: Any, owner: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(name, option, value, owner)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{owner}.{name}: bad value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{owner}.{name}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(name, item, v, owner) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{owner}.{name}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{owner}.{name}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{owner}.{name}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{owner}.{name}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{owner}.{name}: expected a string, got {value!r}")
        return value
    return value
