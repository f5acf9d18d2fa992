"""Weekly statistics of an office: appointments, no-shows, lead time, SMS
cost, WhatsApp messages by status, and the citizens' satisfaction (per
service, the share who had to come back, their comments without personal
data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from service.domain.calendar import local_day_bounds
from service.domain.feedback import FeedbackStats, feedback_stats
from service.domain.models import Office
from service.domain.office_day import WeeklyStats, weekly_stats
from service.office.common import office_or_404
from service.store import feedback as feedback_store
from service.store import schedule as schedule_store


@dataclass(frozen=True, slots=True)
class Week:
    office: Office
    monday: date
    stats: WeeklyStats
    # The citizens' answers about the week's visits (issue 16).
    feedback: FeedbackStats


async def week_stats(
    pool: asyncpg.Pool, office_id: str, monday: date, price_per_segment: float
) -> Week:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        start = local_day_bounds(monday, office.zone)[0]
        end = local_day_bounds(monday + timedelta(days=6), office.zone)[1]
        facts = await schedule_store.appointment_facts(conn, office.id, start, end)
        made = await schedule_store.bookings_made(conn, office.id, start, end)
        segments = await schedule_store.sms_segments_sent(conn, office.id, start, end)
        whatsapp = await schedule_store.whatsapp_by_status(conn, office.id, start, end)
        answers = await feedback_store.responses(conn, office.id, start, end, office.zone)
    return Week(
        office,
        monday,
        weekly_stats(facts, made, segments, price_per_segment, whatsapp),
        feedback_stats(answers),
    )
