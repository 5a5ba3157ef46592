"""Settings from a TOML file (``--config FILE``): sections that mirror the config dataclasses.

A tuned set of settings (``recs tune`` writes one) must travel from one command to the next without
being retyped as a dozen options, and reach the manifests exactly as the options would. So a file holds
``[train]`` (``TrainConfig``'s fields), ``[train.cooc]`` (``CoocConfig``), ``[index]`` (``IndexConfig``),
``[eval]`` (``EvalConfig``) and ``[blend]`` (``BlendConfig``, the learned second stage); every command reads
the sections it uses and leaves the others, so
one file serves ``train-embeddings``, ``build-index`` and ``compare``. An option typed on the command
line wins over the file, the file wins over the defaults.

The keys and their types are read from the dataclasses themselves (``typing.get_type_hints``), so a
field added to a config can be set from a file without touching this module. Everything is checked
when the file is read: an unknown section or key, a value of the wrong type (``dim = "big"``,
``window = 2.5``) or out of range is one ConfigError naming the file, the ``[section] key`` and what
is expected, before anything is read or written.
"""

from __future__ import annotations

import json
import math
import sys
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from recs.config import BlendConfig, EvalConfig, IndexConfig, TrainConfig, parse_pairs
from recs.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser, as the tomli package (setup.cfg)
    import tomli as tomllib

T = TypeVar("T")

# Top-level sections and the config each one mirrors; a nested dataclass field is a sub-section
# (``[train.cooc]``), found from the type hints.
SECTIONS: dict[str, type] = {"train": TrainConfig, "index": IndexConfig, "eval": EvalConfig, "blend": BlendConfig}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def section_classes() -> dict[str, type]:
    """Every section name a file may hold (``train``, ``train.cooc``, ...) and its dataclass."""
    out: dict[str, type] = {}

    def walk(name: str, cls: type) -> None:
        out[name] = cls
        for f in fields(cls):
            hint = _hints(cls)[f.name]
            if isinstance(hint, type) and is_dataclass(hint):
                walk(f"{name}.{f.name}", hint)

    for name, cls in SECTIONS.items():
        walk(name, cls)
    return out


def _expected(hint: Any) -> str:
    """What a value of ``hint`` looks like in TOML, for the error message."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in args if a is not type(None))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"an array of {_expected(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is tuple:
        return f"an array of {len(args)} values"
    return f"a value of type {hint}"


class _Mismatch(Exception):
    """A value that does not fit its field's type (turned into a ConfigError with the file and key)."""


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as read by tomllib, converted to the field type ``hint``, or _Mismatch."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        # TOML has no null: an optional field is either given a value or left out (its default)
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
    raise _Mismatch


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """``pairs``: ``["click:cart", "cart:cart"]`` (as written), ``"click:cart,cart:cart"`` (as the
    option takes it) or ``[["click", "cart"], ...]``."""
    if isinstance(value, str):
        return parse_pairs(value)
    if not isinstance(value, list) or not value:
        raise _Mismatch
    if all(isinstance(v, str) for v in value):
        return parse_pairs(",".join(value))
    return tuple(dict.fromkeys(_coerce(value, tuple[tuple[str, str], ...])))


def _section_values(path: Path, name: str, cls: type, table: Mapping[str, Any], known: Collection[str]
                    ) -> dict[str, Any]:
    """The keys of one section, checked and converted; sub-tables must be known sections."""
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{path}: [{name}] {key}"
        if isinstance(value, dict):
            if f"{name}.{key}" not in known:
                raise ConfigError(f"{path}: unknown section [{name}.{key}]; sections: {_listing(known)}")
            continue
        if key not in hints or (isinstance(hints[key], type) and is_dataclass(hints[key])):
            keys = ", ".join(f.name for f in fields(cls) if not is_dataclass(hints[f.name]))
            raise ConfigError(f"{path}: [{name}] has no key {key!r}; its keys are {keys}")
        try:
            out[key] = _pairs(value) if (cls is IndexConfig and key == "pairs") else _coerce(value, hints[key])
        except _Mismatch:
            extra = ' (e.g. ["click:cart", "cart:cart"])' if key == "pairs" else ""
            raise ConfigError(f"{where} = {_show(value)}: expected {_expected(hints[key])}{extra}") from None
        except ConfigError as e:  # parse_pairs names the bad part
            raise ConfigError(f"{where}: {e}") from None
    return out


def _show(value: Any) -> str:
    """A value as it looked in the file (near enough: TOML and JSON agree on strings, numbers, arrays)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # nan / inf
        return str(value)


def _listing(names: Collection[str]) -> str:
    return ", ".join(f"[{n}]" for n in names)


@dataclass(frozen=True)
class ConfigFile:
    """The checked contents of a config file: section name -> {field: value}, values already of the
    field's type. ``ConfigFile()`` (no file) changes nothing."""

    path: Path | None = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """One value of the file, or ``default`` when it does not set it."""
        return self.sections.get(section, {}).get(key, default)

    def apply(self, base: T, section: str, keep: Collection[str] = ()) -> T:
        """``base`` with the file's values of ``section`` and its sub-sections, except the fields in
        ``keep`` (given on the command line, so they win): dotted below ``section``, e.g. ``dim``,
        ``cooc.k``."""
        changes: dict[str, Any] = {k: v for k, v in self.sections.get(section, {}).items() if k not in keep}
        for f in fields(base):  # type: ignore[arg-type]
            sub = f"{section}.{f.name}"
            if sub in self.sections:
                inner = {k.removeprefix(f"{f.name}.") for k in keep if k.startswith(f"{f.name}.")}
                changes[f.name] = self.apply(getattr(base, f.name), sub, inner)
        return replace(base, **changes) if changes else base  # type: ignore[type-var]

    def train(self, base: TrainConfig | None = None, keep: Collection[str] = ()) -> TrainConfig:
        return self.apply(base or TrainConfig(), "train", keep)

    def index(self, base: IndexConfig | None = None, keep: Collection[str] = ()) -> IndexConfig:
        return self.apply(base or IndexConfig(), "index", keep)

    def eval(self, base: EvalConfig | None = None, keep: Collection[str] = ()) -> EvalConfig:
        return self.apply(base or EvalConfig(), "eval", keep)

    def blend(self, base: BlendConfig | None = None, keep: Collection[str] = ()) -> BlendConfig:
        return self.apply(base or BlendConfig(), "blend", keep)


def parse_config(text: str, path: str | Path = "<config>") -> ConfigFile:
    """Check and convert the TOML ``text`` of a config file (``path`` names it in errors)."""
    path = Path(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    known = section_classes()
    sections: dict[str, dict[str, Any]] = {}

    def read(name: str, table: Mapping[str, Any]) -> None:
        sections[name] = _section_values(path, name, known[name], table, known)
        for key, value in table.items():
            if isinstance(value, dict):
                read(f"{name}.{key}", value)

    for name, value in doc.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} = {_show(value)} is outside any section; put it under one of "
                              f"{_listing(known)}")
        if name not in known:
            raise ConfigError(f"{path}: unknown section [{name}]; sections: {_listing(known)}")
        read(name, value)
    config = ConfigFile(path, {k: v for k, v in sections.items() if v})
    # ranges and choices: each config's own validate(), on the file's values over the defaults
    for name, cls in SECTIONS.items():
        try:
            config.apply(cls(), name).validate()
        except ConfigError as e:
            raise ConfigError(f"{path}: [{name}] {e}") from None
    return config


def read_config(path: str | Path | None) -> ConfigFile:
    """Read a config file; ``None`` gives the empty ConfigFile (no ``--config``)."""
    if path is None:
        return ConfigFile()
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    return parse_config(text, path)


# ---------------------------------------------------------------------------------------------- writing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot write {value} to a config file (not a finite number)")
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to a config file")


def config_sections(**configs: Any) -> dict[str, dict[str, Any]]:
    """Whole configs as file sections: ``config_sections(train=cfg, index=icfg)``; a nested config
    is its own sub-section, ``None`` values are left out (the default, which a file cannot spell)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(name: str, cfg: Any) -> None:
        out[name] = {}
        for f in fields(cfg):
            value = getattr(cfg, f.name)
            if is_dataclass(value):
                walk(f"{name}.{f.name}", value)
            elif value is not None:
                out[name][f.name] = [f"{s}:{t}" for s, t in value] if (name == "index" and f.name == "pairs") \
                    else value
    for name, cfg in configs.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r}; sections: {_listing(SECTIONS)}")
        walk(name, cfg)
    return out


def to_toml(sections: Mapping[str, Mapping[str, Any]], comments: Collection[str] = ()) -> str:
    """TOML text of ``sections`` (as ``config_sections`` gives, or any subset of keys), after
    ``comments`` (one ``# `` line each). Only the types the configs have are written: no dependency on
    a TOML writer, and ``parse_config`` reads back exactly what was written."""
    lines = [f"# {c}".rstrip() for c in comments]
    for name, values in sections.items():
        if not values:
            continue
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
