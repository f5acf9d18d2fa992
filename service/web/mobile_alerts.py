"""Citizen pages of mobile day alerts ("tell me when a mobile day is planned
near me"): the form, the subscription's page under its link (the code step
while its contact is unproved, then stop or renew). No JavaScript needed.

Pages under /m/{id}/{token} carry the token in their address: like a
booking's manage pages, they are private (no referrer, not stored).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service import bookings, mobile_alerts
from service.domain import errors
from service.domain.fields import parse_id
from service.domain.masking import mask_email, mask_phone
from service.domain.mobile_alerts import FORM_FIELDS, subscription_url
from service.places import loaded
from service.store import offices as office_store
from service.web import citizen, i18n, limits
from service.web.citizen import code_step_answer, form_text, render, see_other, shown_again
from service.web.errors import refusal_text, retry_after_header
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.templating import explicit_language, message_languages, request_language

routes = web.RouteTableDef()

FORM = "/mobile-days/alerts"


async def _form_page(
    request: web.Request,
    values: dict[str, str],
    *,
    field_errors: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    language = request_language(request)
    async with request.app[POOL_KEY].acquire() as conn:
        offices = [o for o in await office_store.list_offices(conn) if o.kind == "consulate"]
    offices.sort(key=lambda o: i18n.collation_key(o.name[language]))
    chosen = next((o for o in offices if o.id == values.get("office")), None)
    context: dict[str, Any] = {
        "offices": offices,
        "chosen": chosen,
        "values": values,
        "errors": dict(field_errors or {}),
        "problem": problem,
        "field_order": FORM_FIELDS,
        "countries": i18n.phone_countries(language),
        "phone_country": values.get("phone_country") or (chosen.country if chosen else "FR"),
        "channels": citizen.channel_options(request, phone=True, email=True),
        "languages": message_languages(()),
    }
    return render(request, "citizen/alert_form.html", context, status=status, private=True)


@routes.get(FORM)
async def alert_form(request: web.Request) -> web.Response:
    values = dict.fromkeys(FORM_FIELDS, "") | {
        "office": request.query.get("office", ""),
        "channel": "sms",
        "language": request_language(request),
    }
    return await _form_page(request, values)


@routes.post(FORM)
async def alert_submit(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    form = await request.post()
    values = {name: form_text(form, name) for name in FORM_FIELDS}
    settings = request.app[SETTINGS_KEY]
    try:
        made = await mobile_alerts.subscribe(
            request.app[POOL_KEY],
            values["office"],
            values,
            places=await loaded(),
            secret_key=settings.secret_key,
            now=request.app[CLOCK_KEY](),
            days=settings.mobile_alert_days,
            whatsapp=settings.whatsapp_enabled,
            rules=bookings.Rules.of(settings),
            admit=limits.attempt(request),
        )
    except errors.ValidationFailed as failed:
        return await _form_page(request, values, field_errors=dict(failed.fields), status=422)
    except (errors.Conflict, errors.TooManyRequests) as refusal:
        status = 409 if isinstance(refusal, errors.Conflict) else 429
        problem = refusal_text(request_language(request), refusal)
        response = await _form_page(request, values, problem=problem, status=status)
        response.headers.update(retry_after_header(refusal))
        return response
    see_other(subscription_url(made.id, made.token), private=True)


# The subscription's page -----------------------------------------------------------


def _id(request: web.Request) -> int:
    subscription_id = parse_id(request.match_info["id"])
    if subscription_id is None:
        raise errors.manage_link_refused()
    return subscription_id


async def _subscription(request: web.Request) -> mobile_alerts.SubscriptionPage:
    await limits.check(request, "manage")
    return await mobile_alerts.view(
        request.app[POOL_KEY],
        _id(request),
        request.match_info["token"],
        request.app[SETTINGS_KEY].secret_key,
        request.app[CLOCK_KEY](),
    )


def _base(request: web.Request) -> str:
    return subscription_url(_id(request), request.match_info["token"])


def _language(request: web.Request, page: mobile_alerts.SubscriptionPage) -> str:
    """A link opened from a message speaks the subscription's language
    unless told otherwise."""
    return request_language(request) if explicit_language(request) else page.subscription.language


def _page(
    request: web.Request,
    page: mobile_alerts.SubscriptionPage,
    *,
    field_errors: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    """The code step while the contact is unproved, else the subscription."""
    s = page.subscription
    language = _language(request, page)
    office = page.office
    contact = ""
    if s.contact is not None:
        contact = mask_email(s.contact) if s.channel == "email" else mask_phone(s.contact)
    context: dict[str, Any] = {
        "page": page,
        "subscription": s,
        "office": office,
        "contact": contact,
        "base": _base(request),
        "zone": i18n.zone_label(office.country, office.city[language], language),
        "problem": problem,
        "done": request.query.get("done"),
        "alert": True,
        "entry": None,
    }
    template = "citizen/alert.html"
    if page.code is not None:
        context.update(citizen.code_step_context(request, page.code, field_errors, problem))
        template = "citizen/code.html"
    return render(request, template, context, status=status, language=language, private=True)


@routes.get("/m/{id}/{token}")
async def subscription_page(request: web.Request) -> web.Response:
    return _page(request, await _subscription(request))


@routes.post("/m/{id}/{token}/code")
async def subscription_code(request: web.Request) -> web.Response:
    await limits.check(request, "verify")
    page = await _subscription(request)
    form = await request.post()
    settings = request.app[SETTINGS_KEY]
    attempt = mobile_alerts.verify(
        request.app[POOL_KEY], page.subscription.id, request.match_info["token"],
        form_text(form, "code"), secret_key=settings.secret_key,
        now=request.app[CLOCK_KEY](), days=settings.mobile_alert_days,
    )  # fmt: skip
    return await code_step_answer(
        attempt,
        shown_again(request, _subscription, _page),
        _language(request, page),
        _base(request),
    )


@routes.post("/m/{id}/{token}/code/resend")
async def subscription_resend(request: web.Request) -> web.Response:
    await limits.check(request, "resend")
    page = await _subscription(request)
    settings = request.app[SETTINGS_KEY]
    attempt = mobile_alerts.resend(
        request.app[POOL_KEY], page.subscription.id, request.match_info["token"],
        secret_key=settings.secret_key, now=request.app[CLOCK_KEY](),
        rules=bookings.Rules.of(settings),
    )  # fmt: skip
    return await code_step_answer(
        attempt,
        shown_again(request, _subscription, _page),
        _language(request, page),
        f"{_base(request)}?sent=1",
    )


async def _change(request: web.Request, action: str) -> web.Response:
    page = await _subscription(request)
    settings = request.app[SETTINGS_KEY]
    now = request.app[CLOCK_KEY]()
    try:
        if action == "renew":
            await mobile_alerts.renew(
                request.app[POOL_KEY], page.subscription.id, request.match_info["token"],
                secret_key=settings.secret_key, now=now, days=settings.mobile_alert_days,
            )  # fmt: skip
        else:
            await mobile_alerts.stop(
                request.app[POOL_KEY], page.subscription.id, request.match_info["token"],
                secret_key=settings.secret_key, now=now,
            )  # fmt: skip
    except errors.Conflict as refusal:
        language = _language(request, page)
        return _page(request, page, problem=refusal_text(language, refusal), status=409)
    see_other(f"{_base(request)}?done={action}", private=True)


@routes.post("/m/{id}/{token}/renew")
async def subscription_renew(request: web.Request) -> web.Response:
    return await _change(request, "renew")


@routes.post("/m/{id}/{token}/stop")
async def subscription_stop(request: web.Request) -> web.Response:
    return await _change(request, "stop")
