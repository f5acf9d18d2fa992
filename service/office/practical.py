"""The office's practical information (contact, way there, access) that
citizens read on its page; managers edit it in the three languages."""

from __future__ import annotations

import asyncpg

from service.domain.models import Office
from service.domain.practical import OfficeInfo
from service.office.common import office_or_404
from service.store import offices as office_store


async def office_info(pool: asyncpg.Pool, office_id: str) -> tuple[Office, OfficeInfo]:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        return office, await office_store.office_info(conn, office.id)


async def save_office_info(pool: asyncpg.Pool, office_id: str, info: OfficeInfo) -> bool:
    """Write it as the office's own (no longer demo text); False if unchanged."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        return await office_store.set_office_info(conn, office.id, info)
