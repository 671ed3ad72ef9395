"""A bidding bot: keep the lead by the minimum increment, up to a limit. Run:
`python clients/examples/bidding_bot.py URL TOKEN ME ITEM_ID LIMIT`."""

import asyncio
import sys

from auction import AsyncAuctionClient, AuctionClosed, BidTooLow


async def bot(url: str, token: str, me: str, item_id: str, limit: int, rounds: int = 1000) -> None:
    async with AsyncAuctionClient(url, token) as client:
        for _ in range(rounds):
            item = await client.get_item(item_id)
            if item.status == "closed":
                return
            if item.highest_bidder == me or item.min_next_bid > limit:
                await asyncio.sleep(0.05)
                continue
            try:
                result = await client.place_bid(item_id, item.min_next_bid)
                print(f"{me} leads at {result.amount} (seq {result.seq})")
            except BidTooLow as exc:
                print(f"{me} was outbid; the minimum is now {exc.min_next_bid}")
            except AuctionClosed:
                return


if __name__ == "__main__":
    url, token, me, item_id, limit = sys.argv[1:6]
    asyncio.run(bot(url, token, me, item_id, int(limit)))
