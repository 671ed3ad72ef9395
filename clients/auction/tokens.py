"""Development tokens: HS256 JWTs in the shape the edge verifies (`sub`, `role`, `exp`, `iat`).

For local stacks and tests; production tokens come from your identity provider.
"""

from __future__ import annotations

import re
import time

import jwt

ROLES = ("bidder", "admin")
SUBJECT = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def mint_dev_token(secret: str, sub: str, role: str = "bidder", ttl_seconds: int = 3600) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not SUBJECT.fullmatch(sub):
        raise ValueError("sub must be 1..64 of [A-Za-z0-9_.@-]")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = int(time.time())
    return jwt.encode(
        {"sub": sub, "role": role, "iat": now, "exp": now + ttl_seconds}, secret, algorithm="HS256"
    )
