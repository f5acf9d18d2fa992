-- Counters are shared by the services of an office: a passport and a
-- legalisation appointment at 09:00 use two of the same counters. Each
-- service keeps its own slots (its own grid of start times), and a booking on
-- a slot served by the office's general hours also takes one counter in every
-- 5-minute cell its appointment covers. A slot served by hours dedicated to
-- its service (opening_hours.service_id set) uses its own counters only.

ALTER TABLE slots ADD COLUMN pooled boolean NOT NULL DEFAULT true;

CREATE TABLE counter_cells (
    office_id text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    starts_at timestamptz NOT NULL,
    -- Counters open in [starts_at, starts_at + 5 min); may drop below taken
    -- when hours change: existing bookings stay, no new one fits.
    capacity  integer NOT NULL CHECK (capacity >= 0),
    taken     integer NOT NULL DEFAULT 0 CHECK (taken >= 0),
    PRIMARY KEY (office_id, starts_at)
);

-- The database refuses any increase of `taken` past `capacity`, whichever
-- statement tries it: seats are never oversold, for slots as for counters.
CREATE FUNCTION refuse_oversell() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.taken > OLD.taken AND NEW.taken > NEW.capacity THEN
        RAISE EXCEPTION 'no seat left' USING ERRCODE = 'check_violation',
            CONSTRAINT = 'no_oversell';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER slots_no_oversell BEFORE UPDATE OF taken ON slots
    FOR EACH ROW EXECUTE FUNCTION refuse_oversell();
CREATE TRIGGER counter_cells_no_oversell BEFORE UPDATE OF taken ON counter_cells
    FOR EACH ROW EXECUTE FUNCTION refuse_oversell();
