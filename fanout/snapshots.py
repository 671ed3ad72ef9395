"""Item snapshots from the bidder (`GetItem`), one call in flight per item however many viewers ask.

When 10,000 viewers open the same item at once they all await the same call and share the same
rendered bytes. A snapshot may be a little older than the feed by the time a viewer gets it; the
viewer's catch-up from the history stream covers the difference, so coalescing never costs an event.
The item is rendered by `auction_contract.item_json`, as the REST edge renders it, so a viewer's
snapshot and `GET /items/{id}` are the same object.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

import grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_common.grpc_channels import upstream_channel
from auction_contract.item_json import item_json
from auction_contract.rules import ITEM_ID_PATTERN
from fanout.errors import ItemNotFound, UpstreamUnavailable
from fanout.frames import snapshot_frame

if TYPE_CHECKING:
    from auction_common.service_auth import ServiceAuth
    from fanout.metrics import FanoutMetrics


class Snapshot(NamedTuple):
    seq: int
    frame: bytes


class SnapshotSource:
    """`get(item_id)`: the item's snapshot frame, coalescing concurrent requests per item."""

    def __init__(
        self, target: str, timeout: float, metrics: FanoutMetrics, *, auth: ServiceAuth | None = None
    ) -> None:
        self._channel = upstream_channel(target, auth)
        self._stub = bidder_pb2_grpc.BidderServiceStub(self._channel)
        self._timeout = timeout
        self._metrics = metrics
        self._in_flight: dict[str, asyncio.Task[Snapshot]] = {}

    async def get(self, item_id: str) -> Snapshot:
        if not ITEM_ID_PATTERN.fullmatch(item_id):
            raise ItemNotFound(item_id)
        task = self._in_flight.get(item_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(item_id))
            self._in_flight[item_id] = task
            task.add_done_callback(lambda _t: self._in_flight.pop(item_id, None))
        # shield: one viewer leaving must not cancel the call the others wait for.
        return await asyncio.shield(task)

    async def _fetch(self, item_id: str) -> Snapshot:
        self._metrics.snapshot_calls.inc()
        try:
            reply = await self._stub.GetItem(
                bidder_pb2.GetItemRequest(item_id=item_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise ItemNotFound(item_id) from None
            raise UpstreamUnavailable(f"bidder GetItem: {exc.code().name}") from None
        item = item_json(reply.item)
        return Snapshot(int(item["seq"]), snapshot_frame(item))

    async def close(self) -> None:
        await self._channel.close(grace=None)
