-- title: Cohort sizes
-- answers: How many persons does each cohort hold, static and dynamic alike? members counts the
--   loaded cohort_people rows (dynamic cohorts as PostHog last calculated them, see
--   last_calculation); posthog_count is the size PostHog's cohort list reports, which can lag behind.
--   Cohorts marked deleted are left out; a cohort with members but no cohorts row (created between
--   the two reads) is listed with a NULL name.
--   Current sizes only, no history: every run replaces a project's cohort_people rows (a snapshot, so
--   people who left a cohort disappear), so the dataset never holds an earlier membership. To chart
--   sizes over time, keep this model's output after each run (e.g. append it to a table of your own).
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
-- requires: cohort_people
-- optional: cohorts
-- output: project_id, cohort_id, name, is_static, members, posthog_count, last_calculation (UTC instant)
WITH members AS (
    SELECT project_id, cohort_id, count(DISTINCT person_id) AS members
    FROM cohort_people
    WHERE $project_id IS NULL OR project_id = $project_id
    GROUP BY ALL
),
known AS (
    SELECT project_id, id AS cohort_id, name, is_static, "count" AS posthog_count, last_calculation, deleted
    FROM cohorts
    WHERE $project_id IS NULL OR project_id = $project_id
)
SELECT
    coalesce(k.project_id, m.project_id) AS project_id,
    coalesce(k.cohort_id, m.cohort_id) AS cohort_id,
    k.name,
    k.is_static,
    coalesce(m.members, 0) AS members,
    k.posthog_count,
    k.last_calculation
FROM known AS k
FULL OUTER JOIN members AS m ON m.project_id = k.project_id AND m.cohort_id = k.cohort_id
WHERE NOT coalesce(k.deleted, false)
ORDER BY project_id, members DESC, cohort_id
