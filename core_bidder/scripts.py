"""The Lua operations, one file each, loaded once and run by SHA (redis-py reloads on NOSCRIPT)."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from redis.commands.core import AsyncScript

if TYPE_CHECKING:
    from auction_common.redis_client import AnyRedis


def lua_source(name: str) -> str:
    return (resources.files("core_bidder") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def register(redis: AnyRedis, name: str) -> AsyncScript:
    return redis.register_script(lua_source(name))
