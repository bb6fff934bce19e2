-- title: Persons, their distinct ids and first / last seen
-- answers: Who are the persons of each project, under which distinct ids (from person_distinct_ids
--   and from their events), and when were they first and last seen? Persons without any event are
--   listed with NULL first/last seen; event-only persons (no persons row) with NULL is_identified.
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
-- requires: events
-- optional: persons, person_distinct_ids
-- output: project_id, person_id, distinct_ids VARCHAR[] (sorted), is_identified, first_seen, last_seen, events
WITH ids AS (
    SELECT project_id, person_id, distinct_id FROM person_distinct_ids
    UNION
    SELECT project_id, person_id, distinct_id FROM person_events
),
seen AS (
    SELECT project_id, person_id, min("timestamp") AS first_seen, max("timestamp") AS last_seen, count(*) AS events
    FROM person_events
    GROUP BY ALL
),
everyone AS (
    SELECT project_id, id AS person_id FROM persons
    UNION
    SELECT project_id, person_id FROM ids
)
SELECT
    p.project_id,
    p.person_id,
    (SELECT list(i.distinct_id ORDER BY i.distinct_id) FROM ids AS i
     WHERE i.project_id = p.project_id AND i.person_id = p.person_id) AS distinct_ids,
    pr.is_identified,
    s.first_seen,
    s.last_seen,
    coalesce(s.events, 0) AS events
FROM everyone AS p
LEFT JOIN persons AS pr ON pr.project_id = p.project_id AND pr.id = p.person_id
LEFT JOIN seen AS s ON s.project_id = p.project_id AND s.person_id = p.person_id
WHERE $project_id IS NULL OR p.project_id = $project_id
ORDER BY p.project_id, s.first_seen NULLS LAST, p.person_id
