"""Typed settings from `DRAGOMAN_*` variables and command-line flags.

Each service declares one pydantic-settings class; this module turns its fields into
argparse flags so that a flag, a variable and a default are one declaration, validated in
one place, and listed by `dragoman config`.
"""

import argparse
import types
import typing
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the setting and the problem."""


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
    """Adds one flag per field; unset flags stay absent so variables and defaults apply.

    `prefix` keeps two services' flags apart when one command runs both (`--stt-port`).
    """
    for name, field in settings_cls.model_fields.items():
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
        name: getattr(args, prefix + name)
        for name in settings_cls.model_fields
        if hasattr(args, prefix + name)
    }
    given.update(overrides)
    try:
        return settings_cls(**given)
    except ValidationError as error:
        env_prefix = settings_cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{_flag(str(e['loc'][0]), prefix)} / {env_prefix}{str(e['loc'][0]).upper()}: "
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
            _flag(name, flag_prefix),
            f"{prefix}{name.upper()}",
            field.default if settings is None else getattr(settings, name),
            field.description or "",
        )
        for name, field in settings_cls.model_fields.items()
    ]


def as_environment(settings: BaseSettings) -> dict[str, str]:
    """Every field of `settings` as the `DRAGOMAN_*` variable that sets it: how a launcher
    hands settings it has validated to a service in another process."""
    prefix = settings.model_config.get("env_prefix", "")
    environment = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        environment[f"{prefix}{name.upper()}"] = text
    return environment


class ServiceSettings(BaseSettings):
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
