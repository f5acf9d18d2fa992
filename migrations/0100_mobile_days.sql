-- Mobile consular days: a consulate's staff serve citizens for a day or two
-- in a town of its district, far from the consulate. A mobile day belongs to
-- its office (bookings, staff, references stay the office's) but has its own
-- venue, zone, holidays, dates, hours and counters, and offers a subset of
-- the office's services. Its slots are ordinary slots (same guards, same
-- oversell trigger) marked with the mobile day they are held at.

CREATE TABLE mobile_days (
    id                bigserial PRIMARY KEY,
    office_id         text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    town_ar           text NOT NULL CHECK (length(town_ar) BETWEEN 1 AND 100),
    town_fr           text NOT NULL CHECK (length(town_fr) BETWEEN 1 AND 100),
    town_en           text NOT NULL CHECK (length(town_en) BETWEEN 1 AND 100),
    country           char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    address           text NOT NULL CHECK (length(address) BETWEEN 1 AND 300),
    -- The venue's IANA zone: its hours are wall-clock times there.
    timezone          text NOT NULL,
    -- Countries or "CC-SUB" regions whose public holidays close the venue.
    holiday_countries text[] NOT NULL DEFAULT '{MA}',
    -- No seat is taken before this instant (the guarded statement in
    -- service/store/slots.py checks it, like the booking window).
    booking_opens_at  timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, office_id)
);
CREATE INDEX mobile_days_office ON mobile_days (office_id);

-- The day(s) and hours of a mobile day, in the venue's zone.
CREATE TABLE mobile_day_hours (
    mobile_day_id bigint NOT NULL REFERENCES mobile_days (id) ON DELETE CASCADE,
    day           date NOT NULL,
    opens_at      time NOT NULL,
    closes_at     time NOT NULL,
    counters      integer NOT NULL CHECK (counters BETWEEN 1 AND 100),
    CHECK (opens_at < closes_at),
    PRIMARY KEY (mobile_day_id, day, opens_at)
);

-- The services offered there: a subset of the office's.
CREATE TABLE mobile_day_services (
    mobile_day_id bigint NOT NULL,
    office_id     text NOT NULL,
    service_id    text NOT NULL,
    PRIMARY KEY (mobile_day_id, service_id),
    FOREIGN KEY (mobile_day_id, office_id) REFERENCES mobile_days (id, office_id)
        ON DELETE CASCADE,
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id) ON DELETE CASCADE
);

-- A slot or a counter cell is the office's (NULL) or a mobile day's.
ALTER TABLE slots ADD COLUMN mobile_day_id bigint REFERENCES mobile_days (id);
ALTER TABLE slots DROP CONSTRAINT slots_office_id_service_id_starts_at_key;
ALTER TABLE slots ADD CONSTRAINT slots_site_service_start
    UNIQUE NULLS NOT DISTINCT (office_id, service_id, starts_at, mobile_day_id);
CREATE INDEX slots_mobile_day ON slots (mobile_day_id, starts_at) WHERE mobile_day_id IS NOT NULL;

ALTER TABLE counter_cells ADD COLUMN mobile_day_id bigint REFERENCES mobile_days (id);
ALTER TABLE counter_cells DROP CONSTRAINT counter_cells_pkey;
ALTER TABLE counter_cells ADD CONSTRAINT counter_cells_site_start
    UNIQUE NULLS NOT DISTINCT (office_id, starts_at, mobile_day_id);

-- Where a booking takes place: its mobile day's venue when its slot is held
-- at one, else its office. Messages, pages and calendar files read this.
CREATE VIEW booking_sites AS
SELECT b.id AS booking_id, m.id AS mobile_day_id,
       COALESCE(m.address, o.address) AS address,
       COALESCE(m.timezone, o.timezone) AS timezone,
       COALESCE(m.country, o.country) AS country,
       COALESCE(m.town_ar, o.city_ar) AS city_ar,
       COALESCE(m.town_fr, o.city_fr) AS city_fr,
       COALESCE(m.town_en, o.city_en) AS city_en
FROM bookings b
JOIN offices o ON o.id = b.office_id
JOIN slots s ON s.id = b.slot_id
LEFT JOIN mobile_days m ON m.id = s.mobile_day_id;

-- The public pages that list mobile days are kept by the read cache (0040):
-- a change drops them like a change of the catalog.
CREATE TRIGGER mobile_days_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mobile_days
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER mobile_day_hours_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mobile_day_hours
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER mobile_day_services_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mobile_day_services
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
