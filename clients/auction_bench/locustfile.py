"""Locust: a bidding war on one item through the REST edge (FastHttpUser, no think time).

It runs in the stock Locust image too (deploy/compose.yaml, profile `load`), so it imports only Locust
and the standard library, and mints its own HS256 tokens. Env: AUCTION_JWT_SECRET (required) and
AUCTION_ITEM_ID (the hot item; when unset, the first user creates one with an admin token).
`python -m locust -f clients/auction_bench/locustfile.py --headless -u 50 -r 50 -t 10s --host URL`
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import threading
import time
from typing import Any

from locust import FastHttpUser, constant, task

_numbers = itertools.count()
_item_lock = threading.Lock()
_item_id: list[str] = [os.environ.get("AUCTION_ITEM_ID", "")]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_token(secret: str, sub: str, role: str, ttl_seconds: int = 3600) -> str:
    """The same claims `auction.tokens.mint_dev_token` writes, with the standard library only."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"sub": sub, "role": role, "iat": now, "exp": now + ttl_seconds}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


class Bidder(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        secret = os.environ["AUCTION_JWT_SECRET"]
        token = hs256_token(secret, f"locust{next(_numbers)}", "bidder")
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with _item_lock:
            if not _item_id[0]:
                _item_id[0] = self._create_item(secret)
        self.path = f"/items/{_item_id[0]}/bid"
        self.next_amount = 100

    def _create_item(self, secret: str) -> str:
        admin = {"Authorization": f"Bearer {hs256_token(secret, 'locust-admin', 'admin')}"}
        body = {"title": "Locust lot", "currency": "USD", "starting_price": 100, "min_increment": 10,
                "ends_at": "2099-01-01T00:00:00Z"}  # fmt: skip
        response = self.client.post("/items", json=body, headers=admin, name="/items")
        item: dict[str, Any] = json.loads(response.content or b"{}")
        return str(item["id"])

    @task
    def bid(self) -> None:
        body = f'{{"amount":{self.next_amount}}}'
        with self.client.post(
            self.path, data=body, headers=self.headers, name="/items/[id]/bid", catch_response=True
        ) as response:
            if response.status_code not in (201, 409):
                response.failure(f"status {response.status_code}")
                return
            response.success()
            doc = json.loads(response.content or b"{}")
            item = doc.get("item", doc)
            self.next_amount = int(item.get("min_next_bid", self.next_amount + 10))
