"""Signing in and out, one's own account and API tokens, and the office's
staff accounts (service.office.accounts)."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from service.domain import errors
from service.domain.errors import N_
from service.domain.fields import EMAIL_MAX, PASSWORD_MAX, TOKEN_LABEL_MAX
from service.domain.staff import Permission, Role, StaffMember
from service.office.accounts import (
    NewAccount,
    add_staff,
    create_api_token,
    deactivate_staff,
    login,
    logout,
)
from service.store import staff as staff_store
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.office.alerts import LOGIN_ALERTS_KEY
from service.web.sessions import authorise, current_member, end_session, signed_in, start_session

routes = web.RouteTableDef()


def _safe_next(raw: str | None) -> str:
    # Only our own office pages: never an open redirect to another site.
    if raw and raw.startswith("/office/") and "//" not in raw and "\\" not in raw:
        return raw
    return "/office/"


@routes.get("/office/login")
async def login_page(request: web.Request) -> web.Response:
    if await current_member(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return pages.render(
        request,
        "login.html",
        {"next": _safe_next(request.query.get("next")), "email": "", "problem": None},
    )


@routes.post("/office/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await pages.form(request)
    settings = request.app[SETTINGS_KEY]
    email = form.get("email", "")[:EMAIL_MAX]
    target = _safe_next(form.get("next"))
    try:
        done = await login(
            request.app[POOL_KEY],
            email,
            form.get("password", "")[:PASSWORD_MAX],
            request.remote,
            secret_key=settings.secret_key,
            now=pages.now(request),
            allow_demo=settings.env in ("dev", "test"),
            alert=request.app[LOGIN_ALERTS_KEY],
        )
    except (errors.Unauthorized, errors.TooManyRequests) as refused:
        page = pages.render(
            request,
            "login.html",
            {"next": target, "email": email, "problem": pages.refusal_text(request, refused)},
            status=refused.status,
            switch_to=str(URL("/office/login").with_query(next=target)),
        )
        if refused.retry_after is not None:
            page.headers["Retry-After"] = str(refused.retry_after)
        return page
    response = web.HTTPSeeOther(target)
    start_session(request, response, done.session_id)
    raise response


@routes.post("/office/logout")
async def logout_submit(request: web.Request) -> web.Response:
    session_id = request.cookies.get("mawid_staff")
    if session_id:
        await logout(
            request.app[POOL_KEY], session_id, secret_key=request.app[SETTINGS_KEY].secret_key
        )
    response = web.HTTPSeeOther("/office/login")
    end_session(response)
    raise response


@routes.get("/office/account")
async def account(request: web.Request) -> web.Response:
    member = await signed_in(request)
    return await _account_page(request, member, None)


async def _account_page(
    request: web.Request, member: StaffMember, new_token: str | None
) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        tokens = await staff_store.tokens_of(conn, member.id)
    context = await pages.base_context(request, member, None)
    context.update(tokens=tokens, new_token=new_token)
    return pages.render(request, "account.html", context, switch_to="/office/account")


@routes.post("/office/account/tokens")
async def create_token(request: web.Request) -> web.Response:
    member = await signed_in(request)
    form = await pages.form(request)
    token = await create_api_token(
        request.app[POOL_KEY],
        member,
        " ".join(form.get("label", "").split())[:TOKEN_LABEL_MAX],
        secret_key=request.app[SETTINGS_KEY].secret_key,
        now=pages.now(request),
    )
    # Shown in this answer only; a reload will not show it again.
    return await _account_page(request, member, token)


@routes.post("/office/account/tokens/{token_id:[0-9]+}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    member = await signed_in(request)
    async with request.app[POOL_KEY].acquire() as conn:
        await staff_store.revoke_token(
            conn, member.id, pages.path_id(request, "token_id"), pages.now(request)
        )
    raise web.HTTPSeeOther("/office/account")


# The office's staff ---------------------------------------------------------------------


@routes.get("/office/{office}/staff")
async def staff_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_STAFF)
    return await _staff_page(request, member, None, None)


async def _staff_page(
    request: web.Request,
    member: StaffMember,
    created: NewAccount | None,
    refused: errors.Refusal | None,
) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        people = await staff_store.for_office(conn, pages.office_id(request))
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(
        people=people,
        created=created,
        problem=pages.refusal_text(request, refused) if refused else None,
        notice=pages.notice(request, request.query.get("notice")),
    )
    return pages.render(
        request,
        "staff.html",
        context,
        status=refused.status if refused else 200,
        switch_to=f"/office/{pages.office_id(request)}/staff",
    )


@routes.post("/office/{office}/staff/{staff_id:[0-9]+}/deactivate")
async def staff_deactivate(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_STAFF)
    try:
        done = await deactivate_staff(
            request.app[POOL_KEY],
            pages.office_id(request),
            pages.path_id(request, "staff_id"),
            member,
            pages.now(request),
        )
    except errors.Forbidden as refused:
        return await _staff_page(request, member, None, refused)
    notice = "deactivated" if done else "unchanged"
    raise web.HTTPSeeOther(f"/office/{pages.office_id(request)}/staff?notice={notice}")


@routes.post("/office/{office}/staff")
async def staff_add(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_STAFF)
    form = await pages.form(request)
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        refused = errors.ValidationFailed(message=N_("Choose a role."))
        return await _staff_page(request, member, None, refused)
    try:
        async with request.app[POOL_KEY].acquire() as conn:
            created = await add_staff(
                conn,
                form.get("email", ""),
                role,
                [pages.office_id(request)] if role is not Role.ADMIN else [],
                pages.now(request),
                creator=member,
            )
    except errors.ValidationFailed as refused:
        return await _staff_page(request, member, None, refused)
    # The password is in this answer only.
    return await _staff_page(request, member, created, None)
