"""The web page's side of the edge: its files under `/app/`, their policy, its config, development tokens.

The page itself runs in a real browser in `tests/test_web_page.py`; here the edge alone, over ASGI.
"""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from edge_gateway.app import create_app
from edge_gateway.auth import verifier_from_settings
from edge_gateway.web_app import WEB_DIR, load_files
from tests.test_edge_support import SECRET, make_settings, running_app

PAGES = ("/app/", "/app/item.html", "/app/admin.html")


@pytest.mark.parametrize("path", PAGES)
async def test_pages_carry_their_policy_and_the_edges_own_headers(path: str) -> None:
    """HTML with a policy naming only this origin and the fan-out's, plus nosniff and no-store."""
    async with running_app(make_settings()) as (_, client):
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self' ws://127.0.0.1:8081;" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


async def test_scripts_and_styles_are_served_with_their_types() -> None:
    async with running_app(make_settings()) as (_, client):
        script = await client.get("/app/item.js")
        style = await client.get("/app/app.css")
        head = await client.head("/app/live.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert head.status_code == 200
    assert head.headers["content-length"] == str((WEB_DIR / "live.js").stat().st_size)


async def test_app_without_its_slash_is_redirected() -> None:
    async with running_app(make_settings()) as (_, client):
        response = await client.get("/app")
    assert response.status_code == 308
    assert response.headers["location"] == "/app/"


@pytest.mark.parametrize(
    "path", ["/app/nope.js", "/app/web_app.py", "/app/..%2Fweb_app.py", "/app/web%2Fitem.js"]
)
async def test_anything_but_the_pages_files_is_a_404_problem(path: str) -> None:
    """Only the files of `web/` by name: no other file of the package, no path through a folder."""
    async with running_app(make_settings()) as (_, client):
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "not-found"


async def test_config_names_the_public_fanout_and_the_policy_allows_only_it() -> None:
    settings = make_settings(fanout_public_url="wss://live.example.com")
    async with running_app(settings) as (_, client):
        config = await client.get("/app/config.json")
        page = await client.get("/app/")
    assert config.json() == {"fanout_url": "wss://live.example.com", "dev_tokens": True}
    assert "connect-src 'self' wss://live.example.com;" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "url",
    ["ws://a; script-src *", "http://fanout:8081", "ws://host/path", "wss://a b", "ws://'unsafe-inline'"],
)
def test_a_fanout_url_that_could_widen_the_policy_is_refused(url: str) -> None:
    """Only `ws(s)://host[:port]`: no separator, quote, space or path can reach the policy."""
    with pytest.raises(ValidationError):
        make_settings(fanout_public_url=url)


async def test_a_local_edge_mints_development_tokens_its_verifier_accepts() -> None:
    """`POST /app/dev-token`: an HS256 token for the name and role asked, living at most an hour."""
    settings = make_settings(jwt_issuer="auction-local", jwt_audience="auction")
    before = int(time.time())
    async with running_app(settings) as (_, client):
        response = await client.post("/app/dev-token", json={"sub": "alice", "role": "admin"})
    assert response.status_code == 201
    body = response.json()
    principal = verifier_from_settings(settings).verify(body["token"])
    assert (principal.sub, principal.role) == ("alice", "admin")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience="auction")
    assert claims["iss"] == "auction-local"
    assert before <= claims["iat"]
    assert claims["exp"] - claims["iat"] <= 3600
    assert (body["sub"], body["role"]) == ("alice", "admin")
    assert body["expires_at"].endswith("Z")


async def test_development_tokens_live_no_longer_than_the_edge_accepts() -> None:
    settings = make_settings(max_token_lifetime_seconds=600)
    async with running_app(settings) as (_, client):
        token = (await client.post("/app/dev-token", json={"sub": "bob"})).json()["token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600
    assert claims["role"] == "bidder"


async def test_the_token_endpoint_is_refused_in_production() -> None:
    """In production it answers 404 problem+json like a path that does not exist, and mints nothing."""
    settings = make_settings(environment="production")
    async with running_app(settings) as (_, client):
        refused = await client.post("/app/dev-token", json={"sub": "mallory", "role": "admin"})
        unknown = await client.post("/no/such/path", json={})
        config = await client.get("/app/config.json")
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = refused.json()
    assert "token" not in body
    expected = unknown.json()
    assert (body["type"], body["title"], body["detail"]) == (
        expected["type"],
        expected["title"],
        expected["detail"],
    )
    assert config.json()["dev_tokens"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"sub": "a b"},
        {"sub": ""},
        {"sub": "x" * 65},
        {"sub": "alice", "role": "root"},
        {"sub": "a", "ttl": 9},
        {},
    ],
)
async def test_bad_token_requests_are_422_problems(body: dict[str, Any]) -> None:
    async with running_app(make_settings()) as (_, client):
        response = await client.post("/app/dev-token", json=body)
    assert response.status_code == 422
    assert response.json()["type"] == "validation-error"
    assert "token" not in response.json()


async def test_a_token_request_that_is_not_json_is_415() -> None:
    async with running_app(make_settings()) as (_, client):
        response = await client.post(
            "/app/dev-token", content=b"sub=alice", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 415


def test_the_page_routes_stay_out_of_the_openapi_document() -> None:
    """The SDK is generated from that document: the page must not change it."""
    paths = create_app(make_settings()).openapi()["paths"]
    assert not [path for path in paths if path.startswith("/app")]


def test_the_page_weighs_under_100_kb_and_loads_only_its_own_files() -> None:
    """Everything the page can load, together, stays under 100 KB; every reference is one of its files."""
    files = load_files()
    assert {"index.html", "item.html", "admin.html", "app.css", "item.js", "live.js"} <= files.keys()
    assert sum(len(f.body) for f in files.values()) < 100_000
    for name, found in files.items():
        text = found.body.decode()
        assert not re.search(r"https?://", text), name  # nothing is fetched from elsewhere
        imports = re.findall(r'from "\./([^"]+)"', text)
        links = [link.split("?")[0] for link in re.findall(r'(?:src|href)="([^"]*)"', text)]
        for target in imports + [link for link in links if link not in ("./", "data:,", "#main")]:
            assert target in files, (name, target)
