-- Spanish (es) and Tamazight in Tifinagh (zgh) join ar, fr and en: every
-- column that holds a citizen's language accepts them. The constraints are
-- the ones Postgres named after the inline CHECKs of 0001, 0002 and 0050.
ALTER TABLE bookings DROP CONSTRAINT bookings_language_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_language_check
    CHECK (language IN ('ar', 'fr', 'en', 'es', 'zgh'));

ALTER TABLE outbox DROP CONSTRAINT outbox_language_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_language_check
    CHECK (language IN ('ar', 'fr', 'en', 'es', 'zgh'));

ALTER TABLE draw_entries DROP CONSTRAINT draw_entries_language_check;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_language_check
    CHECK (language IN ('ar', 'fr', 'en', 'es', 'zgh'));

-- The languages an office offers, in the order its pages list them (Tiznit
-- and Agadir: Arabic, then Tamazight). Texts an office writes (names,
-- practical information) stay in ar/fr/en; es and zgh pages show the
-- French and the Arabic text respectively (service.domain.models).
ALTER TABLE offices ADD COLUMN languages text[] NOT NULL
    DEFAULT ARRAY['ar', 'fr', 'en', 'es', 'zgh']
    CHECK (cardinality(languages) >= 1
           AND languages <@ ARRAY['ar', 'fr', 'en', 'es', 'zgh']);
