-- title: Active users (daily / weekly / monthly)
-- answers: How many distinct persons did anything per day, per ISO week (starting Monday) and per
--   calendar month, in each project? Periods are cut in time zone $tz (DST-aware); periods without
--   any activity are absent.
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project, one series per project)
--   $tz          VARCHAR         IANA time zone of the period boundaries, e.g. 'UTC', 'Europe/Paris'
-- requires: events
-- output: project_id, grain ('day' | 'week' | 'month'), period_start DATE, active_users
SELECT
    e.project_id,
    g.grain,
    CAST(date_trunc(g.grain, e."timestamp" AT TIME ZONE $tz) AS DATE) AS period_start,
    count(DISTINCT e.person_id) AS active_users
FROM person_events AS e
CROSS JOIN (VALUES ('day', 1), ('week', 2), ('month', 3)) AS g (grain, grain_order)
WHERE $project_id IS NULL OR e.project_id = $project_id
GROUP BY e.project_id, g.grain, g.grain_order, period_start
ORDER BY e.project_id, g.grain_order, period_start
