"""What every office use case starts from: the office asked for, and the staff
member acting, as the audit trail names them."""

from __future__ import annotations

import asyncpg

from service.domain import errors
from service.domain.models import Office
from service.domain.staff import StaffMember
from service.store import offices as office_store
from service.store.audit import Actor


def actor_of(member: StaffMember) -> Actor:
    return Actor("staff", str(member.id))


async def office_or_404(conn: asyncpg.Connection, office_id: str) -> Office:
    office = await office_store.get_office(conn, office_id)
    if office is None:
        raise errors.office_not_found()
    return office
