-- title: Feature-flag exposure
-- answers: Which persons saw which variant of each feature flag, going by `$feature_flag_called`
--   events ($feature_flag = flag key, $feature_flag_response = variant, 'true'/'false' for boolean
--   flags), and when were the first and last exposures?
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project)
-- requires: events
-- output: project_id, flag_key, variant, persons, exposures, first_exposure, last_exposure (UTC instants)
SELECT
    project_id,
    properties ->> '$."$feature_flag"' AS flag_key,
    properties ->> '$."$feature_flag_response"' AS variant,
    count(DISTINCT person_id) AS persons,
    count(*) AS exposures,
    min("timestamp") AS first_exposure,
    max("timestamp") AS last_exposure
FROM person_events
WHERE event = '$feature_flag_called' AND ($project_id IS NULL OR project_id = $project_id)
GROUP BY ALL
ORDER BY project_id, flag_key, variant
