-- A draw request or a waiting-list place, once it counts (its contact
-- proved, or typed by staff), is told so with its receipt's link: see it,
-- withdraw it or leave the list without the page the citizen may have
-- closed.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer', 'draw_not_served', 'document_ready', 'document_uncollected', 'feedback',
    'waitlist_offer', 'mobile_day_planned', 'entry_received'));
-- Once per entry and channel, whoever writes it (a stand-in for a failed
-- one points at it through fallback_of).
CREATE UNIQUE INDEX outbox_one_receipt ON outbox (draw_entry_id, channel)
    WHERE kind = 'entry_received' AND fallback_of IS NULL;
