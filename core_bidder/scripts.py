"""The Lua operations, one file each, loaded once and run by SHA (redis-py reloads on NOSCRIPT)."""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

from redis.commands.core import AsyncScript

if TYPE_CHECKING:
    from auction_common.redis_client import AnyRedis


_INCLUDE = re.compile(r"^-- include: (\w+)$", re.M)


def _read(name: str) -> str:
    return (resources.files("core_bidder") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def lua_source(name: str) -> str:
    """The script as Redis runs it: each `-- include: NAME` line replaced by `lua/NAME.lua` (Redis has no
    modules for scripts, so shared helpers such as the RFC 3339 formatter are spliced in, written once)."""
    return _INCLUDE.sub(lambda match: _read(match.group(1)), _read(name))


def register(redis: AnyRedis, name: str) -> AsyncScript:
    return redis.register_script(lua_source(name))
