"""Batches from a durable JetStream pull consumer, fetched on the core NATS client.

nats-py's `PullSubscription.fetch` waits for each message of a batch with its own `wait_for` (a task per
message), which made it the archiver's main cost. Here one subscription callback collects deliveries into
a list and wakes the caller once, when enough are in hand or the server ends the request.

A fetch first asks for what is there now (`no_wait`); only when that is nothing does it park a request
for a single message (`expires`), and once that arrives asks again for the rest without waiting. So a
trickle is archived at once and a backlog in full batches, and no request for many messages lingers on
the server. Deliveries that arrive after their request timed out on our side are kept for the next fetch
rather than dropped (dropping would delay them by a whole ack wait).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

HEARTBEAT = "100"
ACK = b"+ACK"
IN_PROGRESS = b"+WPI"


@dataclass(frozen=True, slots=True)
class Delivery:
    stream_seq: int
    subject: str
    data: bytes
    # Where to send the ack.
    reply: str
    # Messages still waiting for this consumer after this one (from the ack subject).
    pending: int


def parse_ack_subject(reply: str) -> tuple[int, int]:
    """(stream sequence, pending) from `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`,
    also in the newer form with domain and account hash in front (and a random token at the end)."""
    tokens = reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[8])
    return int(tokens[7]), int(tokens[10])


class PullConsumer:
    def __init__(self, nc: NatsClient, stream: str, durable: str) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._requests = 0
        self._current = ""
        self._until = 0
        self._ready: list[Delivery] = []
        self._wake = asyncio.Event()

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)

    async def fetch(self, batch: int, wait: float) -> list[Delivery]:
        """Up to `batch` messages: what is there now, else the first to arrive within `wait` and more."""
        if not self._nc.is_connected:
            await asyncio.sleep(wait)  # a request buffered now would reach the server much later
            return []
        if not self._ready:
            await self._request({"batch": batch, "no_wait": True}, batch, wait)
        if not self._ready:
            await self._request({"batch": 1, "expires": int(wait * 1e9)}, 1, wait)
            if self._ready and len(self._ready) < batch:
                more = batch - len(self._ready)
                await self._request({"batch": more, "no_wait": True}, batch, wait)
        taken, self._ready = self._ready[:batch], self._ready[batch:]
        return taken

    async def ack(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await self._nc.publish(delivery.reply, ACK)

    async def in_progress(self, deliveries: list[Delivery]) -> None:
        """Reset their ack timers: still working on them, do not redeliver yet."""
        for delivery in deliveries:
            await self._nc.publish(delivery.reply, IN_PROGRESS)

    async def _request(self, body: dict[str, object], until: int, wait: float) -> None:
        """Send one pull request; return when `until` messages are in hand or the request is over."""
        self._requests += 1
        self._current = f"{self._inbox}.{self._requests}"
        self._until = until
        self._wake.clear()
        try:
            await self._nc.publish(self._api, orjson.dumps(body), reply=self._current)
            async with asyncio.timeout(wait + 1.0):
                await self._wake.wait()
        except TimeoutError:
            pass  # no answer (a frozen server): whatever arrives later is kept for the next fetch
        finally:
            self._current = ""

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is not None:
            # 404 no messages, 408 expired, 409 limits: the request on that inbox is over.
            if status != HEARTBEAT and msg.subject == self._current:
                self._wake.set()
            return
        # JetStream messages keep their own subject; whichever request they answer, they are ours.
        stream_seq, pending = parse_ack_subject(msg.reply)
        self._ready.append(Delivery(stream_seq, msg.subject, msg.data, msg.reply, pending))
        if len(self._ready) >= self._until:
            self._wake.set()
