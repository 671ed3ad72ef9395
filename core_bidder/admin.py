"""`BidderAdminService`: operator calls, refused unless the caller presents the bidder's admin token.

The token is a shared secret (`BIDDER_ADMIN_TOKEN`) sent as `authorization: Bearer <token>` metadata
and compared in constant time. Without one configured the calls are off (PERMISSION_DENIED), so a
default deployment exposes no way to write state around the bid rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from auction.v1 import restore_pb2, restore_pb2_grpc
from auction_common.service_auth import token_matches
from core_bidder.errors import InvalidArgument, PermissionDenied, Unauthenticated
from core_bidder.replica_wait import ReplicaWait
from core_bidder.restore import (
    archived_bids,
    archived_close,
    archived_extensions,
    archived_item,
    archived_leader_max,
    restore_item,
)
from core_bidder.status import abort

if TYPE_CHECKING:
    import grpc.aio

    from auction_common.redis_client import AnyRedis
    from core_bidder.settings import BidderSettings

log = structlog.get_logger(__name__)
_RESULTS = {
    "rebuilt": restore_pb2.RESTORE_RESULT_REBUILT,
    "exists": restore_pb2.RESTORE_RESULT_EXISTS,
    "ahead": restore_pb2.RESTORE_RESULT_AHEAD,
}


def check_admin(metadata: object, token: str | None) -> None:
    """Raise unless the call's metadata carries `authorization: Bearer <token>`."""
    if not token:
        raise PermissionDenied("admin calls are off: the bidder has no BIDDER_ADMIN_TOKEN")
    if not token_matches(metadata, token, "authorization", "Bearer "):
        raise Unauthenticated("an admin call needs `authorization: Bearer <BIDDER_ADMIN_TOKEN>`")


class BidderAdminServicer(restore_pb2_grpc.BidderAdminServiceServicer):
    def __init__(self, redis: AnyRedis, settings: BidderSettings) -> None:
        self._redis = redis
        self._settings = settings
        secret = settings.admin_token
        self._token = secret.get_secret_value() if secret is not None else None
        self._wait = ReplicaWait.of(settings)

    async def RestoreItem(
        self, request: restore_pb2.RestoreItemRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> restore_pb2.RestoreItemResponse:
        try:
            check_admin(context.invocation_metadata(), self._token)
            if not request.HasField("item"):
                raise InvalidArgument("item is required")
            item = archived_item(request.item)
            bids = archived_bids(list(request.recent_bids), request.bid_count)
            extensions = archived_extensions(list(request.recent_extensions), item, bids)
            closed = archived_close(request, bids, extensions)
            leader_max = archived_leader_max(request, bids)
            result, state = await restore_item(
                self._redis, self._settings.partitions, self._settings.history_maxlen - 1,
                item, request.bid_count, bids, force=request.force, extensions=extensions, closed=closed,
                leader_max=leader_max,
            )  # fmt: skip
            if self._wait is not None and (behind := await self._wait.after(self._redis)) is not None:
                raise behind  # restored on the primary; the rebuild may simply be run again
        except Exception as exc:
            await abort(context, exc)
        log.info("item_restored", item_id=item.item_id, result=result, seq=state.seq)
        return restore_pb2.RestoreItemResponse(result=_RESULTS[result], seq=state.seq)
