-- WhatsApp as a channel (issue 15).
--
-- Each booking says where its phone messages go: by SMS, by WhatsApp to the
-- same number, or nowhere (e-mail only).  The citizen chooses on the details
-- form and may change it on the manage page.
ALTER TABLE bookings
    ADD COLUMN message_channel text NOT NULL DEFAULT 'sms'
        CHECK (message_channel IN ('sms', 'whatsapp', 'email'));

-- Outbox rows may go by WhatsApp, and a WhatsApp receipt may say the message
-- was read (after delivered: a row only moves forward).
ALTER TABLE outbox DROP CONSTRAINT outbox_channel_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_channel_check
    CHECK (channel IN ('sms', 'whatsapp', 'email'));
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'sending',
    'sent', 'delivered', 'read', 'undelivered', 'failed', 'skipped', 'cancelled'));
ALTER TABLE outbox ADD COLUMN read_at timestamptz;

-- WhatsApp messages sent to a number in the last day, for the per-number cap
-- (counted per channel, like the SMS one).
CREATE INDEX outbox_whatsapp_recipient ON outbox (recipient, sent_at)
    WHERE channel = 'whatsapp';
