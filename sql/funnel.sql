-- title: Funnel
-- answers: How many persons did the steps of $funnel_steps in that order, each step within
--   $window_days days of the person's first step? Every occurrence of step 1 is tried as a start and
--   each person counts once, at the furthest step any start reached; from a start, each next step is
--   the earliest matching event at or after the previous step (a different event than it).
-- params:
--   $project_id    BIGINT or NULL  only this project (NULL = every project, one funnel per project)
--   $funnel_steps  VARCHAR[]       ordered event names, e.g. ['$pageview', 'signed_up', 'purchase']
--   $window_days   INTEGER         conversion window in days, counted from the first step
-- requires: events
-- output: project_id, step (1-based), event, persons, conversion_from_first, conversion_from_previous
WITH RECURSIVE steps AS (
    SELECT unnest($funnel_steps) AS event, generate_subscripts($funnel_steps, 1) AS step
),
scope AS (
    SELECT DISTINCT project_id
    FROM person_events
    WHERE $project_id IS NULL OR project_id = $project_id
),
step_events AS (
    SELECT e.project_id, e.person_id, e.uuid, e."timestamp" AS ts, s.step
    FROM person_events AS e
    JOIN steps AS s USING (event)
    WHERE $project_id IS NULL OR e.project_id = $project_id
),
walk (project_id, person_id, start_ts, step, ts, uuid) AS (
    SELECT project_id, person_id, ts, 1, ts, uuid
    FROM step_events
    WHERE step = 1
    UNION ALL
    SELECT w.project_id, w.person_id, w.start_ts, w.step + 1, nxt.ts, nxt.uuid
    FROM walk AS w,
        LATERAL (
            SELECT x.ts, x.uuid
            FROM step_events AS x
            WHERE x.project_id = w.project_id
                AND x.person_id = w.person_id
                AND x.step = w.step + 1
                AND x.ts >= w.ts
                AND x.uuid <> w.uuid
                AND x.ts <= w.start_ts + to_days(CAST($window_days AS INTEGER))
            ORDER BY x.ts, x.uuid
            LIMIT 1
        ) AS nxt
),
furthest AS (
    SELECT project_id, person_id, max(step) AS max_step
    FROM walk
    GROUP BY ALL
),
counts AS (
    SELECT
        p.project_id,
        s.step,
        s.event,
        count(f.person_id) AS persons
    FROM scope AS p
    CROSS JOIN steps AS s
    LEFT JOIN furthest AS f ON f.project_id = p.project_id AND f.max_step >= s.step
    GROUP BY ALL
)
SELECT
    project_id,
    step,
    event,
    persons,
    persons / nullif(first_value(persons) OVER w, 0) AS conversion_from_first,
    persons / nullif(coalesce(lag(persons) OVER w, persons), 0) AS conversion_from_previous
FROM counts
WINDOW w AS (PARTITION BY project_id ORDER BY step)
ORDER BY project_id, step
