-- Public holidays a manager reopened by hand (an estimated Eid that fell on
-- another day, a holiday the office works). Slot generation recomputes the
-- 'holiday' closures every run; without this it would close the day again.
CREATE TABLE reopened_days (
    office_id  text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    day        date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (office_id, day)
);
