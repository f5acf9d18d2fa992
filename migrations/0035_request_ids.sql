-- The id of the web request (or job) that wrote an outbox row, so that the
-- worker's lines about sending it carry the same id as the request's.
ALTER TABLE outbox ADD COLUMN request_id text CHECK (length(request_id) <= 64);
