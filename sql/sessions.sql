-- title: Sessions per day
-- answers: How many sessions started each day, by how many persons, how long did they last and how
--   many bounced? Read from PostHog's own `sessions` table (PostHog aggregates it from events: the
--   duration is last event minus first event, in seconds; the channel, entry and exit URLs are its
--   own), so sessions whose events were not loaded still count. Day of $start_timestamp, cut in time
--   zone $tz. The person is the session's distinct_id mapped through person_distinct_ids of the same
--   project, else the distinct_id itself. bounce_rate counts only sessions with a pageview (PostHog
--   leaves $is_bounce NULL without one); NULL when a day has none.
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
--   $tz          VARCHAR         IANA time zone of the day boundaries
-- requires: sessions
-- optional: person_distinct_ids
-- output: project_id, day DATE, sessions, persons, pageviews, avg_duration_s, median_duration_s,
--   max_duration_s, bounce_rate (0..1 or NULL)
WITH ids AS (
    SELECT project_id, distinct_id, min(person_id) AS person_id
    FROM person_distinct_ids
    GROUP BY ALL
)
SELECT
    s.project_id,
    CAST(s.start_timestamp AT TIME ZONE $tz AS DATE) AS day,
    count(*) AS sessions,
    count(DISTINCT coalesce(nullif(i.person_id, ''), s.distinct_id)) AS persons,
    sum(coalesce(s.pageview_count, 0)) AS pageviews,
    avg(s.duration_seconds) AS avg_duration_s,
    median(s.duration_seconds) AS median_duration_s,
    max(s.duration_seconds) AS max_duration_s,
    avg(CAST(s.is_bounce AS INTEGER)) AS bounce_rate
FROM sessions AS s
LEFT JOIN ids AS i ON i.project_id = s.project_id AND i.distinct_id = s.distinct_id
WHERE s.start_timestamp IS NOT NULL AND ($project_id IS NULL OR s.project_id = $project_id)
GROUP BY ALL
ORDER BY s.project_id, day
