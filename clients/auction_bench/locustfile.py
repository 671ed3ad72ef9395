"""Locust: a bidding war on one item through the REST edge (FastHttpUser, no think time).

Env: AUCTION_JWT_SECRET (mints each user's bidder token), AUCTION_ITEM_ID (the hot item).
`python -m locust -f clients/auction_bench/locustfile.py --headless -u 50 -r 50 -t 10s --host URL`
"""

from __future__ import annotations

import itertools
import os

import orjson
from locust import FastHttpUser, constant, task

from auction.tokens import mint_dev_token

_numbers = itertools.count()


class Bidder(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        name = f"locust{next(_numbers)}"
        token = mint_dev_token(os.environ["AUCTION_JWT_SECRET"], name, "bidder", ttl_seconds=3600)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.path = f"/items/{os.environ['AUCTION_ITEM_ID']}/bid"
        self.next_amount = 100

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
            doc = orjson.loads(response.content or b"{}")
            item = doc.get("item", doc)
            self.next_amount = int(item.get("min_next_bid", self.next_amount + 10))
