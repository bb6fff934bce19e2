-- title: Weekly retention by first-seen cohort
-- answers: Of the persons first seen in a given week, what share was active again N weeks later?
--   Weeks start on Monday in time zone $tz. Every (cohort, weeks_since) cell up to the project's last
--   active week is present, with 0 when nobody came back; weeks_since = 0 is the cohort itself.
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
--   $tz          VARCHAR         IANA time zone of the week boundaries
-- requires: events
-- output: project_id, cohort_week DATE, weeks_since, cohort_size, retained, share (0..1)
WITH activity AS (
    SELECT DISTINCT
        project_id,
        person_id,
        CAST(date_trunc('week', "timestamp" AT TIME ZONE $tz) AS DATE) AS week
    FROM person_events
    WHERE $project_id IS NULL OR project_id = $project_id
),
cohorts AS (
    SELECT project_id, person_id, min(week) AS cohort_week
    FROM activity
    GROUP BY ALL
),
grid AS (
    SELECT
        c.project_id,
        c.cohort_week,
        count(*) AS cohort_size,
        unnest(range(0, (any_value(l.last_week) - c.cohort_week) // 7 + 1)) AS weeks_since
    FROM cohorts AS c
    JOIN (SELECT project_id, max(week) AS last_week FROM activity GROUP BY ALL) AS l USING (project_id)
    GROUP BY c.project_id, c.cohort_week
),
retained AS (
    SELECT c.project_id, c.cohort_week, (a.week - c.cohort_week) // 7 AS weeks_since, count(*) AS retained
    FROM cohorts AS c
    JOIN activity AS a USING (project_id, person_id)
    GROUP BY ALL
)
SELECT
    g.project_id,
    g.cohort_week,
    g.weeks_since,
    g.cohort_size,
    coalesce(r.retained, 0) AS retained,
    coalesce(r.retained, 0) / g.cohort_size AS share
FROM grid AS g
LEFT JOIN retained AS r USING (project_id, cohort_week, weeks_since)
ORDER BY g.project_id, g.cohort_week, g.weeks_since
