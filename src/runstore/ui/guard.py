"""What every request to the viewer passes first: its method, its ``Host`` header and,
with a token, its credentials; and what every response carries: headers that keep a
page's stored text from ever running as script.

The viewer only reads: GET and HEAD, anything else 405. ``Host`` must name the server
as it was bound (on loopback: ``localhost``, ``127.0.0.1`` or ``[::1]``), so that a page
on another site whose name an attacker pointed at this machine (DNS rebinding) gets 421
instead of the runs. With a token, a request carries it as ``Authorization: Bearer
TOKEN``, or once as ``?token=TOKEN`` -- answered with a cookie and a redirect to the same
address without it, so the token leaves the address bar -- or as that cookie; else 401.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from collections.abc import Sequence
from http.cookies import CookieError
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl
from urllib.parse import urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.responses import RedirectResponse
from starlette.responses import Response
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

__all__ = ["LOOPBACK_HOSTS", "SECURITY_HEADERS", "Guard", "allowed_hosts", "is_loopback"]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""The names a browser uses for this machine; ``Host`` may be any of them on loopback."""

SECURITY_HEADERS = {
    # no inline script or style, nothing from elsewhere: stored text cannot run (the
    # viewer's script may fetch the viewer's own pages: a run's histograms)
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
"""Sent with every response."""

_COOKIE = "runstore_token"
_READING = frozenset({"GET", "HEAD"})


def is_loopback(host: str) -> bool:
    """True for a name or address of this machine only (``127.0.0.0/8``, ``::1``,
    ``localhost``)."""
    host = host.strip("[]").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8765`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")].lower() if "]" in header else ""
    return header.rsplit(":", 1)[0].lower() if header.count(":") == 1 else header.lower()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Guard:
    """ASGI middleware: the method, ``Host`` and token checks, and the security headers.

    Args:
        hosts: the names ``Host`` may carry (without a port); ``"*"`` among them accepts
            any (for a server bound to every interface, behind a token).
        token: the token every request must carry, or None.
    """

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str], token: str | None) -> None:
        self.app = app
        self.hosts = frozenset(host.strip("[]").lower() for host in hosts)
        self.token = token
        self._cookie = None if token is None else _digest(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is not None:
            await _with_headers(refused)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["method"] not in _READING:
            return PlainTextResponse(
                "405: the viewer only reads (GET and HEAD)",
                status_code=405,
                headers={"allow": "GET, HEAD"},
            )
        headers = Headers(scope=scope)
        if "*" not in self.hosts and _host_name(headers.get("host", "")) not in self.hosts:
            return PlainTextResponse(
                "421: this server does not answer to that host name", status_code=421
            )
        if self.token is None:
            return None
        return self._credentials(scope, headers)

    def _credentials(self, scope: Scope, headers: Headers) -> Response | None:
        assert self.token is not None
        assert self._cookie is not None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self.token):
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
        from_query = [value for name, value in query if name == "token"]
        if from_query and hmac.compare_digest(from_query[-1], self.token):
            rest = urlencode([(name, value) for name, value in query if name != "token"])
            response = RedirectResponse(
                scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else ""),
                status_code=303,
            )
            response.set_cookie(_COOKIE, self._cookie, httponly=True, samesite="strict", path="/")
            return response
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:
            cookies.clear()
        kept = cookies.get(_COOKIE)
        if kept is not None and hmac.compare_digest(kept.value, self._cookie):
            return None
        return PlainTextResponse(
            "401: this viewer needs its token: open the address it printed "
            "(with ?token=...) or send 'Authorization: Bearer TOKEN'",
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )


def _with_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def allowed_hosts(host: str) -> Sequence[str]:
    """The ``Host`` names a server bound to ``host`` answers to."""
    if is_loopback(host):
        return LOOPBACK_HOSTS
    if host in ("0.0.0.0", "::", ""):
        return ("*",)
    return (host,)
