-- title: Event volume per day and event name
-- answers: How many events of each name were captured per day (day cut in time zone $tz)?
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
--   $tz          VARCHAR         IANA time zone of the day boundaries
-- requires: events
-- output: project_id, day DATE, event, events
SELECT
    project_id,
    CAST("timestamp" AT TIME ZONE $tz AS DATE) AS day,
    event,
    count(*) AS events
FROM events
WHERE $project_id IS NULL OR project_id = $project_id
GROUP BY ALL
ORDER BY project_id, day, event
