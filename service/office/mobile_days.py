"""A manager's mobile consular days: list the upcoming ones, create one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from service.domain.mobile_day import MobileDay, parse_mobile_day_form
from service.domain.models import Office, Service
from service.office.common import office_or_404
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store


async def office_mobile_days(
    pool: asyncpg.Pool, office_id: str, now: datetime
) -> tuple[Office, list[Service], list[MobileDay]]:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        services = await office_store.list_services(conn, office.id)
        return office, services, await mobile_day_store.upcoming(conn, now, office.id)


async def create_mobile_day(
    pool: asyncpg.Pool, office_id: str, form: Mapping[str, str], now: datetime
) -> MobileDay:
    """The mobile day the form describes, with its slots planned, or
    ValidationFailed and nothing written."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        services = await office_store.list_services(conn, office.id)
        mobile_day = parse_mobile_day_form(form, office.id, [s.id for s in services])
        async with conn.transaction():
            made = await mobile_day_store.create(conn, mobile_day)
            await mobile_day_store.regenerate(conn, office, made, now)
        return made
