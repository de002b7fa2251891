"""Sessions, CSRF, tokens, scopes and the login rate limit, on the real app."""

from __future__ import annotations

from web_kit import PASSWORD, client_for

from agi_server.web.auth import ROLE_SCOPES


async def test_login_sets_a_strict_httponly_cookie_and_returns_the_csrf_token(asgi, users):
    async with client_for(asgi) as client:
        reply = await client.post("/api/login", json={"name": "ali", "password": PASSWORD})
        assert reply.status_code == 200
        cookie = reply.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # plain http, auto
        body = reply.json()
        assert body["role"] == "operator" and body["extensions"] == ["5050"] and body["departments"] == ["support"]
        assert set(body["scopes"]) == ROLE_SCOPES["operator"]
        me = await client.get("/api/me")
        assert me.status_code == 200 and me.json()["csrf_token"] == body["csrf_token"]


async def test_not_logged_in_is_401_and_a_wrong_password_too(asgi, users):
    async with client_for(asgi) as client:
        assert (await client.get("/api/extensions")).status_code == 401
        assert (await client.post("/api/login", json={"name": "ali", "password": "wrong!"})).status_code == 401
        assert (await client.post("/api/login", json={"name": "nobody", "password": "wrong!"})).status_code == 401


async def test_unsafe_method_by_cookie_needs_the_sessions_csrf_token(as_user):
    client = await as_user("ali")
    good = client.headers.pop("X-CSRF-Token")
    body = {"number": "09121234567"}
    missing = await client.post("/api/click-to-call", json=body)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    wrong = await client.post("/api/click-to-call", json=body, headers={"X-CSRF-Token": good[:-2] + "xx"})
    assert wrong.status_code == 403
    other = await as_user("sara")  # another session's token is not this one's
    stolen = await client.post("/api/click-to-call", json=body, headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]})
    assert stolen.status_code == 403
    assert (await client.get("/api/me")).status_code == 200  # safe methods need none


async def test_bearer_token_needs_no_csrf_and_only_has_its_scopes(asgi, token):
    secret = await token("calls:read")
    async with client_for(asgi, headers={"Authorization": f"Bearer {secret}"}) as client:
        assert (await client.get("/api/extensions")).status_code == 200
        denied = await client.post("/api/click-to-call", json={"number": "0912", "extension": "5050"})
        assert denied.status_code == 403 and "calls:write" in denied.json()["detail"]
        assert (await client.get("/api/callbacks")).status_code == 403
    async with client_for(asgi, headers={"Authorization": "Bearer agi_" + "x" * 43}) as client:
        assert (await client.get("/api/extensions")).status_code == 401


async def test_a_users_token_sees_only_what_the_user_sees(asgi, token):
    secret = await token("calls:read", "supervise", user="ali")  # supervise: more than an operator may
    async with client_for(asgi, headers={"Authorization": f"Bearer {secret}"}) as client:
        me = (await client.get("/api/me")).json()
        assert me["scopes"] == ["calls:read"] and me["extensions"] == ["5050"]
        assert [row["extension"] for row in (await client.get("/api/extensions")).json()] == ["5050"]


async def test_operator_may_not_supervise_and_supervisor_not_admin(as_user):
    ali = await as_user("ali")
    assert (await ali.post("/api/supervise", json={"mode": "spy", "agent": "5051"})).status_code == 403
    boss = await as_user("boss")
    assert (await boss.get("/api/audit")).status_code == 200
    assert set((await boss.get("/api/me")).json()["extensions"]) == {"5050", "5051", "300"}


async def test_login_rate_limit_per_user_name_is_429_with_retry_after(asgi, users):
    async with client_for(asgi) as client:
        for _ in range(3):
            assert (await client.post("/api/login", json={"name": "ali", "password": "nope"})).status_code == 401
        blocked = await client.post("/api/login", json={"name": "ali", "password": PASSWORD})
        assert blocked.status_code == 429 and 0 < int(blocked.headers["Retry-After"]) <= 60
        # Another user from another address is not blocked.
    other = httpx_client_from(asgi, "10.0.0.99")
    async with other:
        assert (await other.post("/api/login", json={"name": "sara", "password": PASSWORD})).status_code == 200


async def test_login_rate_limit_per_address(asgi, users):
    async with client_for(asgi) as client:
        for name in ("u1", "u2", "u3"):
            await client.post("/api/login", json={"name": name, "password": "nope"})
        assert (await client.post("/api/login", json={"name": "sara", "password": PASSWORD})).status_code == 429


async def test_password_change_and_logout_end_sessions(as_user, users):
    client = await as_user("ali")
    await users.set_password("ali", "another password")
    assert (await client.get("/api/me")).status_code == 401
    client2 = await as_user("sara")
    assert (await client2.post("/api/logout")).status_code == 204
    client2.cookies.clear()
    assert (await client2.get("/api/me")).status_code == 401


def httpx_client_from(asgi, address: str):
    import httpx

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=(address, 1)), base_url="http://t")
