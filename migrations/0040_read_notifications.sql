-- The web processes keep what citizens read most (offices, services, closures,
-- each day's slots) in memory for at most READ_CACHE_SECONDS, and drop an
-- entry as soon as Postgres says it changed: these triggers notify at commit
-- (never for a rolled-back change; duplicates within a transaction are folded).
--
-- mawid_slots: '<office> <service> <epoch of starts_at>' per slot changed;
--              '<office> * <epoch>' per counter cell changed (the seats it
--              shares belong to every service of the office);
--              '<office> * *' when one statement changed many rows (a
--              regeneration), so that a listener is not flooded.
-- mawid_catalog: '' when offices, services or closures changed.

CREATE FUNCTION notify_slots_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 50 THEN
        PERFORM pg_notify('mawid_slots', office_id || ' * *')
        FROM (SELECT DISTINCT office_id FROM changed) c;
    ELSE
        PERFORM pg_notify('mawid_slots',
                          office_id || ' ' || service_id || ' '
                          || extract(epoch FROM starts_at)::bigint)
        FROM (SELECT DISTINCT office_id, service_id, starts_at FROM changed) c;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION notify_cells_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 50 THEN
        PERFORM pg_notify('mawid_slots', office_id || ' * *')
        FROM (SELECT DISTINCT office_id FROM changed) c;
    ELSE
        PERFORM pg_notify('mawid_slots',
                          office_id || ' * ' || extract(epoch FROM starts_at)::bigint)
        FROM (SELECT DISTINCT office_id, starts_at FROM changed) c;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER slots_inserted AFTER INSERT ON slots
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_slots_changed();
CREATE TRIGGER slots_updated AFTER UPDATE ON slots
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_slots_changed();
CREATE TRIGGER slots_deleted AFTER DELETE ON slots
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_slots_changed();

CREATE TRIGGER cells_inserted AFTER INSERT ON counter_cells
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_cells_changed();
CREATE TRIGGER cells_updated AFTER UPDATE ON counter_cells
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_cells_changed();
CREATE TRIGGER cells_deleted AFTER DELETE ON counter_cells
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_cells_changed();

CREATE FUNCTION notify_catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mawid_catalog', '');
    RETURN NULL;
END $$;

CREATE TRIGGER offices_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON offices
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER services_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER closures_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON closures
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
