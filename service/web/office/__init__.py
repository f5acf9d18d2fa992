"""Office pages under /office/ and the office JSON API under
/api/v1/offices/{office}/..., one module per topic as in service.office:
accounts, schedule, changes, practical, feed, stats, draws, waitlist, and
api; pages holds
what the pages share. Handlers authorise first (see service.web.sessions), parse, call one
use case, render.

Pages follow the same language choice as the citizen pages (?lang=, cookie,
Accept-Language, else French): clerks in Morocco and at consulates abroad work
in French or Arabic. The CSV export and the ICS feed are data and stay
language-neutral.
"""

from __future__ import annotations

from aiohttp import web

from service.web.office import (
    accounts,
    api,
    changes,
    display,
    documents,
    draws,
    feed,
    mobile_days,
    personal_data,
    practical,
    schedule,
    stats,
    waitlist,
)

# The API first, then the pages, as they were registered before the split.
routes: list[web.AbstractRouteDef] = [
    *api.routes,
    *accounts.routes,
    *schedule.routes,
    *changes.routes,
    *practical.routes,
    *mobile_days.routes,
    *stats.routes,
    *feed.routes,
    *display.routes,
    *personal_data.routes,
    *draws.routes,
    *documents.routes,
    *waitlist.routes,
]
