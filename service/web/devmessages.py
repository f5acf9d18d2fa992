"""Dev mode only: the messages the dev sink "sent", from the outbox itself.

GET /dev/messages (HTML) and /dev/messages.json.  Outside dev mode both are
404, whether or not the routes were added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from markupsafe import escape

from service.store import outbox
from service.web.keys import POOL_KEY, SETTINGS_KEY

routes = web.RouteTableDef()


def _check_dev(request: web.Request) -> None:
    if not request.app[SETTINGS_KEY].is_dev:
        raise web.HTTPNotFound()


def _item(row: dict[str, Any]) -> dict[str, Any]:
    created: datetime = row["created_at"]
    return {
        "channel": row["channel"],
        "to": row["recipient"],
        "kind": row["kind"],
        "reference": row["reference"],
        "body": row["body"],
        "segments": row["segments"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "created_at": created.isoformat(),
    }


async def _items(request: web.Request) -> list[dict[str, Any]]:
    async with request.app[POOL_KEY].acquire() as conn:
        return [_item(r) for r in await outbox.recent_messages(conn)]


@routes.get("/dev/messages.json")
async def messages_json(request: web.Request) -> web.Response:
    _check_dev(request)
    return web.json_response(await _items(request))


@routes.get("/dev/messages")
async def messages_html(request: web.Request) -> web.Response:
    _check_dev(request)
    rows = []
    for m in await _items(request):
        cells = (
            m["created_at"],
            m["channel"],
            m["kind"],
            m["status"],
            m["reference"],
            m["to"],
            "" if m["segments"] is None else str(m["segments"]),
        )
        tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
        body = escape(m["body"] or m["status_reason"] or "")
        rows.append(f"<tr>{tds}<td><pre dir=\"auto\">{body}</pre></td></tr>")
    html = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>Dev messages</title><meta http-equiv=\"refresh\" content=\"5\"></head><body>"
        "<h1>Messages recorded by the dev sink</h1>"
        "<p>Nothing here left the machine. JSON: <a href=\"/dev/messages.json\">"
        "/dev/messages.json</a></p><table border=\"1\" cellpadding=\"4\"><tr><th>created</th>"
        "<th>channel</th><th>kind</th><th>status</th><th>reference</th><th>to</th>"
        "<th>segments</th><th>body</th></tr>" + "".join(rows) + "</table></body></html>"
    )
    return web.Response(text=html, content_type="text/html")
