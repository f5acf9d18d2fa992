-- The sweeper queues codes and offers (service.domain.messages.URGENT_KINDS)
-- ahead of a backlog of other due messages: found by an index of their own,
-- not by reading through the backlog every second.
CREATE INDEX outbox_due_urgent ON outbox (send_at)
    WHERE status = 'pending' AND kind IN ('code', 'draw_offer', 'waitlist_offer');
