"""Dev mode: messages go to the sink and show up at /dev/messages(.json)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.web import devmessages
from service.worker.senders import DevSink, make_senders
from tests.fixtures.notify import Env, book, outbox_rows, wait_for


def with_dev_routes(app: web.Application) -> web.Application:
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    if "/dev/messages.json" not in paths:
        app.add_routes(devmessages.routes)
    return app


def test_dev_mode_without_providers_uses_the_sink() -> None:
    senders = make_senders(Settings(env="dev"))
    assert isinstance(senders.sms, DevSink) and isinstance(senders.email, DevSink)
    with pytest.raises(RuntimeError):
        make_senders(Settings(env="production"))


async def test_dev_messages_lists_what_the_sink_recorded(notify_env: Env) -> None:
    env = notify_env
    dev = env.settings.with_(env="dev")
    state = await env.worker_state_for(dev, senders=make_senders(
        dev.with_(twilio_account_sid="", smtp_host="")
    ))
    env.settings = dev


    await env.start_worker(state)
    starts = env.clock() + timedelta(days=9)
    booked = await book(env, starts_at=starts, language="ar")

    async def sent() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return all(r["status"] == "sent" for r in rows if r["kind"] == "confirmation")

    await wait_for(sent, what="the sink")
    assert env.twilio.sent == [] and env.smtp.received == []

    app = with_dev_routes(create_app(dev, pool=env.pool, clock=env.clock))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/dev/messages.json")
        assert resp.status == 200
        items = await resp.json()
        assert {i["channel"] for i in items} == {"sms", "email"}
        sms = next(i for i in items if i["channel"] == "sms")
        assert set(sms) >= {
            "channel", "to", "kind", "reference", "body", "segments", "status", "created_at"
        }
        assert sms["reference"] == booked.booking.reference
        assert sms["kind"] == "confirmation" and sms["status"] == "sent"
        assert "موعد مؤكد" in sms["body"] and sms["segments"] >= 1
        resp = await client.get("/dev/messages")
        assert resp.status == 200
        assert booked.booking.reference in await resp.text()

    test_settings = dev.with_(env="test")
    app = with_dev_routes(create_app(test_settings, pool=env.pool, clock=env.clock))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/dev/messages.json")).status == 404
        assert (await client.get("/dev/messages")).status == 404
