"""Typed settings from `DRAGOMAN_*` variables and command-line flags.

Each service declares one pydantic-settings class, nested by concern (limits, VAD, auth,
TLS, backends...): each concern is a `SettingsGroup` that the part it configures takes as
it is, so nothing is copied by hand from flat settings into the parts. The leaves keep
flat names, unique within a service, which are the flags (`--max-streams`), the variables
(`DRAGOMAN_GATEWAY_MAX_STREAMS`) and the keyword arguments (`GatewaySettings(max_streams=
2)`). A default, a range and a description are one `Field` declaration; this module turns
it into a flag, a variable, a row of `dragoman config` and the README table, and reads the
range back for whatever else must state it.
"""

import argparse
import functools
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the setting and the problem."""


class SettingsGroup(BaseModel):
    """The settings of one concern of a service, which the part it configures takes whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _group(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, SettingsGroup):
        return annotation
    return None


def leaves(settings_cls: type[BaseModel]) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every setting as (path of attribute names, field), groups flattened in order."""
    for name, field in settings_cls.model_fields.items():
        group = _group(field.annotation)
        if group is None:
            yield (name,), field
        else:
            for path, leaf in leaves(group):
                yield (name, *path), leaf


def declared(settings_cls: type[BaseModel], name: str) -> FieldInfo:
    """The declaration of the setting named `name`, in whichever group it is."""
    for path, field in leaves(settings_cls):
        if path[-1] == name:
            return field
    raise KeyError(name)


@dataclass(frozen=True)
class Range:
    """The values a setting may take, as its Field declares them (ge/gt, le/lt)."""

    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False
    high_exclusive: bool = False

    @classmethod
    def of(cls, field: FieldInfo) -> "Range":
        bounds: dict[str, Any] = {}
        for item in field.metadata:
            if isinstance(item, annotated_types.Ge):
                bounds.update(low=item.ge, low_exclusive=False)
            elif isinstance(item, annotated_types.Gt):
                bounds.update(low=item.gt, low_exclusive=True)
            elif isinstance(item, annotated_types.Le):
                bounds.update(high=item.le, high_exclusive=False)
            elif isinstance(item, annotated_types.Lt):
                bounds.update(high=item.lt, high_exclusive=True)
        return cls(**bounds)

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_exclusive else value < self.low):
            return False
        return self.high is None or (
            value < self.high if self.high_exclusive else value <= self.high
        )

    def __str__(self) -> str:
        low = (
            None
            if self.low is None
            else f"{'more than' if self.low_exclusive else 'at least'} {self.low:g}"
        )
        high = (
            None
            if self.high is None
            else f"{'less than' if self.high_exclusive else 'at most'} {self.high:g}"
        )
        if low and high:
            if not (self.low_exclusive or self.high_exclusive):
                return f"{self.low:g}-{self.high:g}"
            if self.low_exclusive and self.high_exclusive:
                return f"between {self.low:g} and {self.high:g} (exclusive)"
            return f"{low} and {high}"
        return low or high or "any value"


@functools.cache
def declared_range(settings_cls: type[BaseModel], name: str) -> Range:
    """The range the setting named `name` declares: what a request's value must keep too."""
    return Range.of(declared(settings_cls, name))


def _value(settings: BaseModel, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for name in path:
        value = getattr(value, name)
    return value


def _nest(settings_cls: type[BaseModel], flat: dict[str, Any]) -> dict[str, Any]:
    """Flat settings (`max_streams=2`) moved into their groups (`limits={"max_streams": 2}`)."""
    nested: dict[str, Any] = {}
    groups = {
        name: group
        for name, field in settings_cls.model_fields.items()
        if (group := _group(field.annotation)) is not None
    }
    owner = {path[-1]: path[0] for path, _ in leaves(settings_cls) if len(path) > 1}
    for key, value in flat.items():
        if key in groups and isinstance(value, BaseModel):
            value = value.model_dump()
        if key in owner:
            nested.setdefault(owner[key], {})[key] = value
        elif key in groups and isinstance(value, dict):
            nested.setdefault(key, {}).update(value)
        else:
            nested[key] = value
    for name, group in groups.items():
        if isinstance(nested.get(name), dict):
            nested[name] = _nest(group, nested[name])
    return nested


class _FlatEnvironment(PydanticBaseSettingsSource):
    """`DRAGOMAN_<SERVICE>_<NAME>` for every leaf, whichever group it is in."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every leaf at once

    def __call__(self) -> dict[str, Any]:
        prefix = self.settings_cls.model_config.get("env_prefix", "")
        environment = {name.upper(): value for name, value in os.environ.items()}
        found = {}
        for path, _ in leaves(self.settings_cls):
            variable = f"{prefix}{path[-1]}".upper()
            if variable in environment:
                found[path[-1]] = environment[variable]
        return found


class NestedSettings(BaseSettings):
    """Settings whose groups are filled from flat names: keywords, variables and flags."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A flat name must say which setting it is: one leaf each, none named as a group."""
        super().__pydantic_init_subclass__(**kwargs)
        names = [path[-1] for path, _ in leaves(cls)]
        groups = {name for name, field in cls.model_fields.items() if _group(field.annotation)}
        clashes = {name for name in names if names.count(name) > 1} | (set(names) & groups)
        if clashes:
            raise TypeError(f"{cls.__name__} names settings twice: {', '.join(sorted(clashes))}")

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: Any) -> Any:
        return _nest(cls, data) if isinstance(data, dict) else data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatEnvironment(settings_cls)


def _flag(name: str, prefix: str = "") -> str:
    return "--" + (prefix + name).replace("_", "-")


def _scalar_type(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def add_arguments(
    parser: argparse.ArgumentParser, settings_cls: type[BaseSettings], prefix: str = ""
) -> None:
    """Adds one flag per setting; unset flags stay absent so variables and defaults apply.

    `prefix` keeps two services' flags apart when one command runs both (`--stt-port`).
    """
    for path, field in leaves(settings_cls):
        name = path[-1]
        kind = _scalar_type(field.annotation)
        help_text = f"{field.description or ''} (default: {field.default!r})"
        if kind is bool:
            parser.add_argument(
                _flag(name, prefix),
                dest=prefix + name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                _flag(name, prefix),
                dest=prefix + name,
                type=kind if kind in (int, float) else str,
                default=argparse.SUPPRESS,
                metavar=name.upper(),
                help=help_text,
            )


def from_arguments(
    settings_cls: type[SettingsT], args: argparse.Namespace, prefix: str = "", **overrides: Any
) -> SettingsT:
    """Builds the settings: flags win over `DRAGOMAN_*` variables, which win over defaults."""
    given = {
        path[-1]: getattr(args, prefix + path[-1])
        for path, _ in leaves(settings_cls)
        if hasattr(args, prefix + path[-1])
    }
    given.update(overrides)
    try:
        return settings_cls(**given)
    except ValidationError as error:
        env_prefix = settings_cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{_flag(str(e['loc'][-1]), prefix)} / {env_prefix}{str(e['loc'][-1]).upper()}: "
            f"{e['msg']}"
            for e in error.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def describe(
    settings_cls: type[BaseSettings], settings: BaseSettings | None = None, flag_prefix: str = ""
) -> list[tuple[str, str, Any, str]]:
    """Rows of (flag, variable, value, description): the effective values of `settings`, or
    the declared defaults when none is given (the README's table)."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    return [
        (
            _flag(path[-1], flag_prefix),
            f"{prefix}{path[-1].upper()}",
            field.default if settings is None else _value(settings, path),
            field.description or "",
        )
        for path, field in leaves(settings_cls)
    ]


def updated(settings: SettingsT, **changes: Any) -> SettingsT:
    """`settings` with `changes` by flat name (`stt_target=...`), validated again; the
    variables do not apply, every setting being given."""
    flat = {path[-1]: _value(settings, path) for path, _ in leaves(type(settings))}
    return type(settings)(**(flat | changes))


def as_environment(settings: BaseSettings) -> dict[str, str]:
    """Every setting of `settings` as the `DRAGOMAN_*` variable that sets it: how a launcher
    hands settings it has validated to a service in another process."""
    prefix = settings.model_config.get("env_prefix", "")
    environment = {}
    for path, _ in leaves(type(settings)):
        value = _value(settings, path)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        environment[f"{prefix}{path[-1].upper()}"] = text
    return environment


class ServiceSettings(NestedSettings):
    """Settings every service has: where it logs and how."""

    log_level: str = Field(
        "INFO",
        description="Log level: DEBUG, INFO, WARNING or ERROR",
        pattern="^(DEBUG|INFO|WARNING|ERROR)$",
    )
    log_json: bool = Field(False, description="Log one JSON object per line instead of text")


class BackendServerSettings(BaseSettings):
    """Settings of a service that gateways reach through DNS-balanced channels."""

    max_connection_age_s: float = Field(
        300.0,
        gt=0,
        description="Close client connections this old, gracefully (calls in flight finish), "
        "so that gateways resolve the service's name again and use replicas added since",
    )
