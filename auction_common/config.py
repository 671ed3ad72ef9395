"""Reading a service's settings at startup: a bad value is one clear line per problem, never a traceback."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_class: type[SettingsT], service: str) -> SettingsT | None:
    """The settings from the environment, or None after printing what is wrong to stderr."""
    try:
        return settings_class()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"{service}: invalid configuration: {where}: {error['msg']}", file=sys.stderr)
        return None
