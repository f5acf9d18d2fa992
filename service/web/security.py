"""Security headers, CSRF protection and cookie defaults for the HTML pages.

Used by the citizen pages and the office pages alike:

    check_csrf(request)             403 on an unsafe request without a valid token
    issue_cookie(request, response) a CSRF cookie drawn for the request's forms
    add_security_headers(headers)   the headers every answer carries
    csrf_token(request) -> str      value for <input type="hidden" name="_csrf">
    set_cookie(response, name, value, settings=...)   HttpOnly, SameSite=Lax,
                                    Secure outside dev/test

CSRF is a signed double submit: a random HttpOnly cookie, and in each form an
HMAC of that cookie keyed by the secret key. A forged cross-site form cannot
read the cookie, so it cannot produce the HMAC; the HMAC also means an attacker
who can plant a cookie (a sibling subdomain) still cannot mint a matching token
without the server's key. JSON API and webhook paths are exempt: the API is
authenticated by bearer tokens and webhooks by provider signatures, neither of
which a browser attaches on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import MutableMapping

from aiohttp import web
from multidict import istr

from service.config import Settings
from service.domain.errors import N_, Forbidden
from service.web.keys import SETTINGS_KEY

CSRF_COOKIE = "mawid_csrf"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
_CSRF_NEW = web.RequestKey("csrf_new_cookie", bool)
_CSRF_VALUE = web.RequestKey("csrf_cookie", str)

# For answers whose URL carries a secret (a manage link, a feed address) and
# for refusal pages: no referrer, no shared cache, no search engine.
PRIVATE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths authenticated otherwise (bearer token, provider signature).
CSRF_EXEMPT_PREFIXES = ("/api/", "/webhooks/")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)

# Names as istr: a header store takes them without folding their case, on
# every answer (adding them cost three times as much with str names).
SECURITY_HEADERS = {
    istr("Content-Security-Policy"): CONTENT_SECURITY_POLICY,
    istr("X-Content-Type-Options"): "nosniff",
    istr("X-Frame-Options"): "DENY",
    # Pages carrying a secret in their URL (manage links) override this with
    # no-referrer.
    istr("Referrer-Policy"): "same-origin",
    istr("Cross-Origin-Opener-Policy"): "same-origin",
    istr("Permissions-Policy"): "camera=(), microphone=(), geolocation=(), payment=()",
}


def is_secure_context(settings: Settings) -> bool:
    """Cookies get `Secure` everywhere but on the plain-HTTP dev and test servers."""
    return settings.env not in ("dev", "test")


def set_cookie(
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    settings: Settings,
    max_age: int | None = None,
    path: str = "/",
    httponly: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=httponly,
        samesite="Lax",
        secure=is_secure_context(settings),
    )


def _sign(cookie: str, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def _cookie_value(request: web.Request) -> str:
    """The browser's CSRF cookie, drawing a new one (sent on the response) if absent."""
    if _CSRF_VALUE in request:
        return request[_CSRF_VALUE]
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (16 <= len(cookie) <= 128):
        cookie = secrets.token_urlsafe(32)
        request[_CSRF_NEW] = True
    request[_CSRF_VALUE] = cookie
    return cookie


def csrf_token(request: web.Request) -> str:
    """The token a form must send back in its `_csrf` field."""
    return _sign(_cookie_value(request), request.app[SETTINGS_KEY].secret_key)


def csrf_valid(request: web.Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    expected = _sign(cookie, request.app[SETTINGS_KEY].secret_key)
    return hmac.compare_digest(expected, submitted)


def _exempt(path: str) -> bool:
    return path.startswith(CSRF_EXEMPT_PREFIXES)


async def _submitted_token(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # request.post() caches the parsed form, so the handler reads it again for free.
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def issue_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """A CSRF cookie drawn for this request's forms goes out with its
    answer (a redirect after a form included)."""
    if _CSRF_NEW in request and not response.prepared:
        set_cookie(
            response,
            CSRF_COOKIE,
            request[_CSRF_VALUE],
            settings=request.app[SETTINGS_KEY],
        )


async def check_csrf(request: web.Request) -> None:
    """403 before the handler runs when an unsafe request lacks a valid token."""
    if request.method in UNSAFE_METHODS and not _exempt(request.path):
        if not csrf_valid(request, await _submitted_token(request)):
            raise Forbidden(
                "csrf",
                N_(
                    "This form has expired or did not come from this site. "
                    "Go back, reload the page and try again."
                ),
            )


def add_security_headers(headers: MutableMapping[str, str]) -> None:
    """The security headers a response has not set itself. Added by the
    one middleware (service.web.front) to every answer, aiohttp's
    own 404 and 405 and static files included: a response signal would cost
    every request a coroutine more."""
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
