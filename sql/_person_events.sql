-- title: Events with their resolved person (base view, not a report model)
-- answers: Who is the person behind each event? The runner creates this view before the models run,
--   so every model counts persons the same way: the person_distinct_ids mapping of the event's
--   distinct_id in the SAME project first, then events.person_id, then the distinct_id itself
--   (anonymous users who were never merged count as one person per distinct id).
-- params: none (models filter by project themselves)
-- requires: events
-- optional: person_distinct_ids
-- by hand: SET schema = 'posthog'; then run this file and any model with its $params bound.
CREATE OR REPLACE TEMP VIEW person_events AS
SELECT
    e.project_id,
    e.uuid,
    e.event,
    e.distinct_id,
    coalesce(nullif(m.person_id, ''), nullif(e.person_id, ''), e.distinct_id) AS person_id,
    e."timestamp",
    e.session_id,
    e.properties
FROM events AS e
LEFT JOIN (
    -- one person per (project, distinct id) even if the mapping table holds duplicates
    SELECT project_id, distinct_id, min(person_id) AS person_id
    FROM person_distinct_ids
    GROUP BY ALL
) AS m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id
