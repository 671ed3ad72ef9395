"""The ceiling: a FastAPI endpoint on the bid route's path that does nothing, served like the edge."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

app = FastAPI(default_response_class=ORJSONResponse)


@app.post("/items/{item_id}/bid", status_code=201)
async def bid(item_id: str) -> dict[str, object]:
    return {"item_id": item_id, "accepted": True}


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    port = int(os.environ.get("BARE_PORT", "8090"))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
