-- title: Top events
-- answers: Which event names are captured most, and by how many distinct persons?
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project, ranked within each)
--   $top_n       INTEGER         keep this many event names per project
-- requires: events
-- output: project_id, rank, event, events, persons
SELECT
    project_id,
    row_number() OVER (PARTITION BY project_id ORDER BY count(*) DESC, event) AS rank,
    event,
    count(*) AS events,
    count(DISTINCT person_id) AS persons
FROM person_events
WHERE $project_id IS NULL OR project_id = $project_id
GROUP BY project_id, event
QUALIFY rank <= $top_n
ORDER BY project_id, rank
