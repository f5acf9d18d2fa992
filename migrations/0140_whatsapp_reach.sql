-- WhatsApp's gaps (issue 15): the channel switched for a number that is not
-- a WhatsApp user, the WhatsApp opt-out, and a draw request's channel.

-- Why the service itself last switched a booking's channel away from
-- WhatsApp (the citizen's own choice clears it): 'not_whatsapp_user' when
-- Twilio reported the number has no WhatsApp (63003, 63024).
ALTER TABLE bookings ADD COLUMN message_channel_reason text
    CHECK (message_channel_reason IN ('not_whatsapp_user'));

-- A draw request chooses where its phone messages go (its code, "not
-- served", its offers), as a booking does (its channel: 0110); why the
-- service switched it, as for bookings.
ALTER TABLE draw_entries
    ADD COLUMN message_channel_reason text
        CHECK (message_channel_reason IN ('not_whatsapp_user'));

-- Numbers that asked for no more WhatsApp messages: STOP (or its word in
-- another language) answered on WhatsApp, or Twilio reporting the number
-- opted out or blocked us (63014, 21610). A keyed hash of the number
-- (service.domain.verification.contact_hash), never the number itself;
-- the citizen's START lifts it.
CREATE TABLE whatsapp_opt_outs (
    contact_hash bytea PRIMARY KEY,
    -- 'stop' (their answer) or the provider's code.
    source       text NOT NULL CHECK (source = 'stop' OR source ~ '^[0-9]{1,6}$'),
    created_at   timestamptz NOT NULL
);
