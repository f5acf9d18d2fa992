"""Who is calling an office page or office API, and may they do this here.

Two ways in: the staff session cookie (set by /office/login, server-side
session stored hashed) and, for /api only, `Authorization: Bearer <token>`
with a per-staff API token. Every office handler starts with `authorise`,
before reading its body or looking anything up, so refusals never depend on
what exists:

    anonymous                  page: 303 to /office/login   api: 401
    office not theirs          404 (as if it did not exist)
    their office, not role     403

CSRF for the API. The CSRF middleware exempts /api (bearer tokens are not
sent by browsers on their own), but the session cookie is. So an unsafe /api
call authenticated by the cookie must carry the same signed double-submit
token the forms use, in the `X-CSRF-Token` header: a cross-site form cannot
set a header, and a cross-site fetch with one needs a CORS grant we never
give. Calls with a bearer token need no such header.
"""

from __future__ import annotations

from aiohttp import web

from service.domain import errors
from service.domain.errors import N_
from service.domain.staff import Access, Permission, StaffMember, access
from service.office import accounts
from service.web.api import bearer
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.security import CSRF_HEADER, UNSAFE_METHODS, csrf_valid, set_cookie

SESSION_COOKIE = "mawid_staff"
_MEMBER: web.RequestKey[StaffMember | None] = web.RequestKey("sessions.member")
_VIA = web.RequestKey("sessions.via", str)
LOGIN_PATH = "/office/login"


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


async def current_member(request: web.Request) -> StaffMember | None:
    """The signed-in staff member, or None. Cached on the request."""
    if _MEMBER in request:
        return request[_MEMBER]
    settings = request.app[SETTINGS_KEY]
    pool = request.app[POOL_KEY]
    now = request.app[CLOCK_KEY]()
    member: StaffMember | None = None
    via = ""
    token = bearer(request) if is_api(request) else None
    if token is not None:
        # A bad token is a refusal even when a good cookie rides along: the
        # caller said who they meant to be.
        member = await accounts.token_member(pool, token, secret_key=settings.secret_key, now=now)
        via = "token"
    elif session_id := request.cookies.get(SESSION_COOKIE):
        member = await accounts.session_member(
            pool, session_id, secret_key=settings.secret_key, now=now
        )
        via = "session"
    request[_MEMBER] = member
    request[_VIA] = via
    return member


def _login_redirect(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{LOGIN_PATH}?next={request.rel_url.path}")


async def signed_in(request: web.Request) -> StaffMember:
    """Anyone signed in, whatever their office (account pages)."""
    member = await current_member(request)
    if member is None:
        if is_api(request):
            raise errors.Unauthorized("unauthorized", N_("Sign in or send an API token."))
        raise _login_redirect(request)
    if is_api(request) and request.method in UNSAFE_METHODS and request[_VIA] == "session":
        if not csrf_valid(request, request.headers.get(CSRF_HEADER)):
            raise errors.Forbidden(
                "csrf", N_("A signed-in browser call must carry the X-CSRF-Token header.")
            )
    return member


async def authorise(request: web.Request, permission: Permission) -> StaffMember:
    """The member, if they may do `permission` at the office in the URL."""
    member = await signed_in(request)
    verdict = access(member, request.match_info["office"], permission)
    if verdict is Access.NO_OFFICE:
        raise errors.NotFound()
    if verdict is Access.FORBIDDEN:
        raise errors.Forbidden("forbidden", N_("Your role may not do this."))
    return member


def start_session(request: web.Request, response: web.StreamResponse, session_id: str) -> None:
    # No max-age: the cookie dies with the browser; the server-side expiry
    # (idle and absolute) is what actually ends the session.
    set_cookie(response, SESSION_COOKIE, session_id, settings=request.app[SETTINGS_KEY])


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
