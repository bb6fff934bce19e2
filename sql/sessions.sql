-- title: Sessions per day
-- answers: How many sessions (events sharing a session_id within a project) started each day, and
--   how long did they last (last event minus first event, in seconds)? Day of the session's first
--   event, cut in time zone $tz. Events without session_id are ignored.
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
--   $tz          VARCHAR         IANA time zone of the day boundaries
-- requires: events
-- output: project_id, day DATE, sessions, persons, events, avg_duration_s, median_duration_s, max_duration_s
WITH sessions AS (
    SELECT
        project_id,
        session_id,
        min("timestamp") AS started,
        epoch(max("timestamp")) - epoch(min("timestamp")) AS duration_s,
        count(*) AS events,
        min(person_id) AS person_id
    FROM person_events
    WHERE coalesce(session_id, '') <> '' AND ($project_id IS NULL OR project_id = $project_id)
    GROUP BY project_id, session_id
)
SELECT
    project_id,
    CAST(started AT TIME ZONE $tz AS DATE) AS day,
    count(*) AS sessions,
    count(DISTINCT person_id) AS persons,
    sum(events) AS events,
    avg(duration_s) AS avg_duration_s,
    median(duration_s) AS median_duration_s,
    max(duration_s) AS max_duration_s
FROM sessions
GROUP BY ALL
ORDER BY project_id, day
