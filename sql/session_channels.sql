-- title: Sessions by channel type
-- answers: Where do sessions come from (PostHog's $channel_type: Direct, Organic Search, Paid Search,
--   Referral, Organic Social, Email, ...), what share of each project's sessions does each channel
--   bring, how long do its sessions last and how often do they bounce? A missing channel reads as
--   'Unknown'. bounce_rate counts only sessions with a pageview (NULL when there are none).
-- params:
--   $project_id  BIGINT or NULL  only this project (NULL = every project, ranked within each)
--   $top_n       INTEGER         keep this many channels per project
-- requires: sessions
-- output: project_id, rank, channel_type, sessions, share (0..1 of the project's sessions),
--   avg_duration_s, median_duration_s, bounce_rate (0..1 or NULL)
SELECT
    project_id,
    row_number() OVER (PARTITION BY project_id ORDER BY count(*) DESC, channel_type) AS rank,
    channel_type,
    count(*) AS sessions,
    count(*) / sum(count(*)) OVER (PARTITION BY project_id) AS share,
    avg(duration_seconds) AS avg_duration_s,
    median(duration_seconds) AS median_duration_s,
    avg(CAST(is_bounce AS INTEGER)) AS bounce_rate
FROM (
    SELECT project_id, coalesce(nullif(channel_type, ''), 'Unknown') AS channel_type, duration_seconds, is_bounce
    FROM sessions
    WHERE $project_id IS NULL OR project_id = $project_id
)
GROUP BY project_id, channel_type
QUALIFY rank <= $top_n
ORDER BY project_id, rank
