"""Jinja2 for the HTML pages: environment, per-request language, static assets.

`setup(app)` installs aiohttp_jinja2 with autoescaping and the i18n extension.
Templates read the request's language from the `language` context variable
(set by the context processor), so `{{ _("...") }}` and `{% trans %}` answer in
the reader's language without any global state. Templates get:

    language, dir                 "ar"/"fr"/"en", "rtl"/"ltr"
    language_links                [{code, name, url, current}] for the switch
    _ / gettext / ngettext        newstyle gettext (autoescaped, %-formatting)
    csrf_field()                  the hidden CSRF input for a form
    asset("site.css")             URL of a static file, versioned by content
    fmt_date(instant, timezone)   "lundi 15 février 2027" (ar_MA for Arabic)
    fmt_time(instant, timezone)   "09:00" in the office's zone
    fmt_day(date)                 a calendar date, long form
    fmt_day_short(date)           "mar. 1 déc.": a day in a list of days
    fmt_days(first, last[, short])  the days from first to last, or the one day
    phone_countries()             (code, "France (+33)") for a phone's country menu
    country_name(code)            "France", "فرنسا"
    message_languages(offered)    (code, name) for a message language menu
    fmt_moment(instant, timezone) "mar. 1 déc. 09:15" in the office's zone
    time_links(slots, office, url, day_id)   a day's times as links to url + slot id
    fmt_weekdays(days)            "lundi – vendredi" for weekdays (0 = Monday) in a row
    wall|hm                       a wall-clock time, "09:00"
    sep                           ", " or the Arabic "، " between parts of a text
    text|ltr                      on a right-to-left page, numbers and Latin
                                  fragments in a translated text isolated in
                                  <bdi dir="ltr"> ("06 12 34 56 78", "(.ics)")

Macros imported from another file must be imported `with context` to see the
language.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web
from babel.dates import get_day_names
from jinja2.runtime import Context
from markupsafe import Markup, escape

from service.domain.errors import NotFound
from service.domain.models import LANGUAGES, Office, Slot
from service.web import i18n
from service.web.keys import SETTINGS_KEY
from service.web.security import csrf_token, set_cookie

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_PREFIX = "/static"
LANGUAGE_KEY = web.RequestKey("language", str)
ASSET_VERSIONS_KEY = web.AppKey("asset_versions", dict[str, str])
_LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def request_language(request: web.Request) -> str:
    """The page language: ?lang=, then the lang cookie, then Accept-Language."""
    known: str | None = request.get(LANGUAGE_KEY)
    if known is not None:
        return known
    language = i18n.choose_language(
        request.query.get(i18n.LANG_QUERY),
        request.cookies.get(i18n.LANG_COOKIE),
        request.headers.get(hdrs.ACCEPT_LANGUAGE),
    )
    request[LANGUAGE_KEY] = language
    return language


def remember_choice(request: web.Request, response: web.StreamResponse) -> None:
    """Keep a language picked with ?lang= in a cookie, for the next pages."""
    chosen = request.query.get(i18n.LANG_QUERY)
    if (
        chosen in LANGUAGES
        and chosen != request.cookies.get(i18n.LANG_COOKIE)
        and not response.prepared
    ):
        set_cookie(
            response,
            i18n.LANG_COOKIE,
            chosen,
            settings=request.app[SETTINGS_KEY],
            max_age=_LANG_COOKIE_MAX_AGE,
        )


# Paths that never render a page: no language, no template context for them
# (the context's language links alone cost a /healthz a fifth of its rate).
_STATIC = STATIC_PREFIX + "/"
NOT_PAGES = ("/api/", "/webhooks/", _STATIC, "/healthz", "/readyz", "/metrics")


def is_page(path: str) -> bool:
    return not path.startswith(NOT_PAGES)


def enter_page(request: web.Request) -> str:
    """The page's language, and its template context (made when a template
    first reads it)."""
    language = request_language(request)
    request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = _PageContext(request, language)
    return language


def leave_page(request: web.Request, response: web.StreamResponse, language: str) -> None:
    """A language picked from the URL kept in a cookie for the next pages;
    the page says its language, and that it varies with the reader's."""
    remember_choice(request, response)
    if not response.prepared:
        response.headers.setdefault(hdrs.CONTENT_LANGUAGE, language)
        response.headers.setdefault(hdrs.VARY, "Cookie, Accept-Language")


# The longest file name (NAME_MAX) of the file systems we serve from.
_NAME_MAX = 255


def static_request(request: web.Request) -> None:
    """A static path that no file could have is the site's 404 before aiohttp
    looks it up (which raises on a name longer than the file system's)."""
    if request.path.startswith(_STATIC) and any(
        len(part.encode()) > _NAME_MAX for part in request.path.split("/")
    ):
        raise NotFound()


def static_answer(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith(_STATIC):
        return
    name = request.path.removeprefix(_STATIC)
    if request.app[ASSET_VERSIONS_KEY].get(name) is not None:
        if "v" in request.query:
            # Versioned URLs never change content, so phones on slow links fetch each once.
            response.headers.setdefault("Cache-Control", "public, max-age=31536000, immutable")
    elif isinstance(response, web.FileResponse) and not (STATIC_DIR / name).is_file():
        # aiohttp finds a file missing only once it sends the answer, after the
        # metrics have counted it 200: said here, it is the site's 404.
        raise NotFound()


class _PageContext(Mapping[str, Any]):
    """A page's template context, made when a template first reads it: a
    page served from the read cache's rendered bytes never does."""

    __slots__ = ("_language", "_made", "_request")

    def __init__(self, request: web.Request, language: str) -> None:
        self._request = request
        self._language = language
        self._made: dict[str, Any] | None = None

    def _context(self) -> dict[str, Any]:
        if self._made is None:
            self._made = {
                "request": self._request,
                **language_context(self._request, self._language),
            }
        return self._made

    def __getitem__(self, name: str) -> Any:
        return self._context()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._context())

    def __len__(self) -> int:
        return len(self._context())


def languages_in_order(offered: Sequence[str]) -> list[str]:
    """Every language, those an office offers first and in its order."""
    return [*offered, *(code for code in LANGUAGES if code not in offered)]


def message_languages(offered: Sequence[str]) -> list[tuple[str, str]]:
    """(code, name) of every language messages can be sent in, the office's first."""
    return [(code, i18n.LANGUAGE_NAMES[code]) for code in languages_in_order(offered)]


@jinja2.pass_context
def _phone_countries(context: Context) -> tuple[tuple[str, str], ...]:
    return i18n.phone_countries(_language(context))


@jinja2.pass_context
def _country_name(context: Context, code: str) -> str:
    return i18n.country_name(code, _language(context))


def language_context(
    request: web.Request, language: str, offered: Sequence[str] = LANGUAGES
) -> dict[str, Any]:
    """The template variables that depend on the page language; an office's
    pages pass the languages it offers, to list them first (Tiznit: ar, zgh)."""
    links = [
        {
            "code": code,
            "name": i18n.LANGUAGE_NAMES[code],
            "url": _on_this_site(str(request.rel_url.update_query({i18n.LANG_QUERY: code}))),
            "current": code == language,
        }
        for code in languages_in_order(offered)
    ]
    return {
        "language": language,
        "dir": i18n.text_direction(language),
        "language_links": links,
    }


def _on_this_site(url: str) -> str:
    # An address no route knows may start with two slashes, or a slash and a
    # backslash, then a host name, which a browser follows to another site:
    # the 404 page's language links keep one slash.
    return "/" + url.lstrip("/\\")


def explicit_language(request: web.Request) -> bool:
    """Whether the reader chose a language (URL or cookie), not just their browser."""
    return (
        request.query.get(i18n.LANG_QUERY) in LANGUAGES
        or request.cookies.get(i18n.LANG_COOKIE) in LANGUAGES
    )


def _language(context: Context) -> str:
    language = context.get("language")
    return language if isinstance(language, str) else i18n.DEFAULT_LANGUAGE


@jinja2.pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.gettext(_language(context), message)


@jinja2.pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return i18n.ngettext(_language(context), singular, plural, n)


@jinja2.pass_context
def _csrf_field(context: Context) -> Markup:
    request = context["request"]
    return Markup('<input type="hidden" name="_csrf" value="{}">').format(csrf_token(request))


@jinja2.pass_context
def _fmt_date(context: Context, instant: datetime, timezone: str) -> str:
    return i18n.date_long(instant, timezone, _language(context))


@jinja2.pass_context
def _fmt_time(context: Context, instant: datetime, timezone: str) -> str:
    return i18n.time_short(instant, timezone, _language(context))


@jinja2.pass_context
def _time_links(
    context: Context, slots: Iterable[Slot], office: Office, url: str, day_id: str
) -> Markup:
    """A day's bookable times as links to `url` followed by the slot's id
    (the booking form, or a reschedule's confirmation), one <li> each.

    Made here rather than in a template loop: a week page shows a hundred
    times, and Jinja's per-item work was most of the page's cost."""
    language = _language(context)
    book = escape(url)
    described = escape(day_id)
    # Plain f-strings over parts escaped once: Markup.format per item cost
    # as much as the template loop did.
    return Markup(  # noqa: S704 - every part is escaped above or an int
        "".join(
            f'<li><a href="{book}{int(slot.id)}" aria-describedby="{described}">'
            f"{escape(i18n.time_short(slot.starts_at, office.timezone, language))}</a></li>\n"
            for slot in slots
        )
    )


@jinja2.pass_context
def _fmt_day(context: Context, day: date) -> str:
    return i18n.day_heading(day, _language(context))


@jinja2.pass_context
def _fmt_day_short(context: Context, day: date) -> str:
    return i18n.day_short(day, _language(context))


@jinja2.pass_context
def _fmt_days(context: Context, first: date, last: date, short: bool = False) -> str:
    return i18n.day_span(first, last, _language(context), short=short)


@jinja2.pass_context
def _fmt_moment(context: Context, instant: datetime, timezone: str) -> str:
    return i18n.moment_short(instant, timezone, _language(context))


# A run that reads left to right inside Arabic text: digits and Latin letters
# with the punctuation that joins them ("06 12 34 56 78", "2027-W05",
# "name@example.com"), or such a run in its own brackets ("(.ics)"). Tags and
# character references of the markup around it are matched first, and kept.
_RUN = r"[A-Za-z0-9](?:[A-Za-z0-9 .:/@+_\-]*[A-Za-z0-9])?"
_LTR_RUN = re.compile(rf"(<[^>]*>|&#?\w+;)|(\([.+]?{_RUN}\)|\+?{_RUN})")


def isolate_ltr(text: str) -> Markup:
    """`text` (escaped unless already markup) with its left-to-right runs in
    <bdi dir="ltr">, so that a right-to-left paragraph neither reverses nor
    splits them."""

    def wrap(found: re.Match[str]) -> str:
        if found[1]:
            return found[1]
        return f'<bdi dir="ltr" class="ltr">{found[2]}</bdi>'

    return Markup(_LTR_RUN.sub(wrap, str(escape(text))))  # noqa: S704 - escaped above


@jinja2.pass_context
def _ltr(context: Context, text: str) -> Markup | str:
    if i18n.text_direction(_language(context)) != "rtl":
        return text
    return isolate_ltr(text)


@jinja2.pass_context
def _fmt_weekdays(context: Context, days: tuple[int, ...]) -> str:
    names = get_day_names("wide", locale=i18n.babel_locale(_language(context)))
    if len(days) == 1:
        return str(names[days[0]])
    return f"{names[days[0]]} – {names[days[-1]]}"


def _hm(wall: time) -> str:
    return f"{wall:%H:%M}"


@jinja2.pass_context
def _sep(context: Context) -> str:
    return "، " if i18n.text_direction(_language(context)) == "rtl" else ", "


def _asset_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    if STATIC_DIR.is_dir():
        for path in STATIC_DIR.rglob("*"):
            if path.is_file():
                name = path.relative_to(STATIC_DIR).as_posix()
                versions[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return versions


def setup(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True
    )
    versions = _asset_versions()
    app[ASSET_VERSIONS_KEY] = versions

    def asset(name: str) -> str:
        # The content hash in the URL lets the files be cached for long.
        return f"{STATIC_PREFIX}/{name}?v={versions.get(name, '0')}"

    env.globals.update(
        asset=asset,
        csrf_field=_csrf_field,
        fmt_date=_fmt_date,
        fmt_time=_fmt_time,
        fmt_day=_fmt_day,
        fmt_day_short=_fmt_day_short,
        fmt_days=_fmt_days,
        phone_countries=_phone_countries,
        country_name=_country_name,
        message_languages=message_languages,
        fmt_moment=_fmt_moment,
        time_links=_time_links,
        fmt_weekdays=_fmt_weekdays,
        sep=_sep,
    )
    env.filters["ltr"] = _ltr
    env.filters["hm"] = _hm
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, append_version=False)
    return env
