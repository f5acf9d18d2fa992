-- Practical information citizens read before they come: how to reach the
-- office and get in, and per service what it is, what it costs, what to
-- bring (already there: bring_*), when to arrive and what happens if late.
-- Managers edit the texts in the three languages. `info_demo` marks texts the
-- demo seed wrote, so that the pages say they are examples; a manager's save
-- clears it.

ALTER TABLE offices
    ADD COLUMN phone         text NOT NULL DEFAULT ''
        CHECK (phone = '' OR phone ~ '^\+[1-9][0-9]{6,14}$'),
    ADD COLUMN public_email  text NOT NULL DEFAULT '' CHECK (length(public_email) <= 254),
    ADD COLUMN directions_ar text NOT NULL DEFAULT '' CHECK (length(directions_ar) <= 1000),
    ADD COLUMN directions_fr text NOT NULL DEFAULT '' CHECK (length(directions_fr) <= 1000),
    ADD COLUMN directions_en text NOT NULL DEFAULT '' CHECK (length(directions_en) <= 1000),
    ADD COLUMN access_ar     text NOT NULL DEFAULT '' CHECK (length(access_ar) <= 1000),
    ADD COLUMN access_fr     text NOT NULL DEFAULT '' CHECK (length(access_fr) <= 1000),
    ADD COLUMN access_en     text NOT NULL DEFAULT '' CHECK (length(access_en) <= 1000),
    ADD COLUMN info_demo     boolean NOT NULL DEFAULT false;

ALTER TABLE services
    ADD COLUMN description_ar text NOT NULL DEFAULT '' CHECK (length(description_ar) <= 200),
    ADD COLUMN description_fr text NOT NULL DEFAULT '' CHECK (length(description_fr) <= 200),
    ADD COLUMN description_en text NOT NULL DEFAULT '' CHECK (length(description_en) <= 200),
    ADD COLUMN fees_ar        text NOT NULL DEFAULT '' CHECK (length(fees_ar) <= 1000),
    ADD COLUMN fees_fr        text NOT NULL DEFAULT '' CHECK (length(fees_fr) <= 1000),
    ADD COLUMN fees_en        text NOT NULL DEFAULT '' CHECK (length(fees_en) <= 1000),
    ADD COLUMN late_ar        text NOT NULL DEFAULT '' CHECK (length(late_ar) <= 1000),
    ADD COLUMN late_fr        text NOT NULL DEFAULT '' CHECK (length(late_fr) <= 1000),
    ADD COLUMN late_en        text NOT NULL DEFAULT '' CHECK (length(late_en) <= 1000),
    ADD COLUMN arrive_early_minutes integer NOT NULL DEFAULT 10
        CHECK (arrive_early_minutes BETWEEN 0 AND 120),
    ADD COLUMN info_demo      boolean NOT NULL DEFAULT false;
