-- title: Top pages
-- answers: Which pages get the most $pageview events and visitors? The page is the event's $pathname
--   when present, otherwise the path of $current_url (scheme, host, query and fragment removed).
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project, ranked within each)
--   $top_n       INTEGER         keep this many pages per project
-- requires: events
-- output: project_id, rank, page, pageviews, visitors
WITH pageviews AS (
    SELECT
        project_id,
        person_id,
        coalesce(
            nullif(properties ->> '$."$pathname"', ''),
            nullif(
                regexp_replace(
                    regexp_replace(properties ->> '$."$current_url"', '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', ''),
                    '[?#].*$', ''
                ),
                ''
            ),
            CASE WHEN properties ->> '$."$current_url"' IS NOT NULL THEN '/' END,
            '(unknown)'
        ) AS page
    FROM person_events
    WHERE event = '$pageview' AND ($project_id IS NULL OR project_id = $project_id)
)
SELECT
    project_id,
    row_number() OVER (PARTITION BY project_id ORDER BY count(*) DESC, page) AS rank,
    page,
    count(*) AS pageviews,
    count(DISTINCT person_id) AS visitors
FROM pageviews
GROUP BY project_id, page
QUALIFY rank <= $top_n
ORDER BY project_id, rank
