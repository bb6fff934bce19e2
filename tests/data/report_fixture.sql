-- Fixed PostHog data for tests/test_sql_models.py and tests/test_report_html.py (expected answers are
-- written by hand in the tests: change this file and they must be recomputed by hand).
-- Project 1 "Acme" (America/New_York) spans the US DST change of 2024-03-10 07:00 UTC.
-- Project 2 "Beta" reuses the distinct ids alice, bob, anon-1 and the session id s1 for OTHER persons.
-- Person resolution, project 1: anon-1, alice -> pa; bob -> pb (events.person_id 'stale' ignored);
--   anon-9 unmapped -> events.person_id pc; ghost unmapped, no person_id -> 'ghost'. pz: no events.
-- Project 2: alice -> qa; bob, anon-1 -> qb.
-- sessions is PostHog's own table (not derived from the events here): the sessions of the events above
--   with PostHog's figures (duration = last minus first event; $is_bounce NULL without a pageview), plus
--   s9 and t4, whose events were not loaded. No person_id: persons come from the distinct id.
-- cohorts / cohort_people: cohort 104 is deleted (its member row must not count), 105 has members but
--   no cohorts row, 103 none; project 2 reuses cohort id 101 for its own cohort.
CREATE SCHEMA posthog;
CREATE TABLE posthog.projects (id BIGINT, name VARCHAR, timezone VARCHAR, organization VARCHAR);
CREATE TABLE posthog.events (
    project_id BIGINT, uuid VARCHAR, event VARCHAR, distinct_id VARCHAR, person_id VARCHAR,
    "timestamp" TIMESTAMPTZ, created_at TIMESTAMPTZ, properties JSON, elements_chain VARCHAR, session_id VARCHAR
);
CREATE TABLE posthog.persons (
    project_id BIGINT, id VARCHAR, created_at TIMESTAMPTZ, properties JSON, is_identified BOOLEAN
);
CREATE TABLE posthog.person_distinct_ids (project_id BIGINT, distinct_id VARCHAR, person_id VARCHAR);
CREATE TABLE posthog.sessions (
    project_id BIGINT, session_id VARCHAR, distinct_id VARCHAR, start_timestamp TIMESTAMPTZ,
    end_timestamp TIMESTAMPTZ, duration_seconds BIGINT, entry_current_url VARCHAR, end_current_url VARCHAR,
    pageview_count BIGINT, autocapture_count BIGINT, is_bounce BOOLEAN, channel_type VARCHAR
);
CREATE TABLE posthog.cohorts (
    project_id BIGINT, id BIGINT, name VARCHAR, is_static BOOLEAN, count BIGINT,
    last_calculation TIMESTAMPTZ, deleted BOOLEAN, _dlt_load_id VARCHAR
);
CREATE TABLE posthog.cohort_people (project_id BIGINT, cohort_id BIGINT, person_id VARCHAR, _posthog_sentinel BOOLEAN);
CREATE TABLE posthog.feature_flags (
    project_id BIGINT, id BIGINT, key VARCHAR, name VARCHAR, active BOOLEAN, created_at TIMESTAMPTZ, filters JSON
);

INSERT INTO posthog.projects VALUES
    (1, 'Acme', 'America/New_York', 'org'), (2, 'Beta', 'UTC', 'org');

INSERT INTO posthog.persons VALUES
    (1, 'pa', '2024-03-04 10:00:00+00', '{"email": "alice@acme.test"}', true),
    (1, 'pb', '2024-03-05 12:00:00+00', '{"email": "bob@acme.test"}', true),
    (1, 'pc', '2024-03-10 04:00:00+00', '{}', false),
    (1, 'pz', '2024-03-01 00:00:00+00', '{}', false),
    (2, 'qa', '2024-03-04 11:00:00+00', '{}', true),
    (2, 'qb', '2024-03-05 09:00:00+00', '{}', true);

INSERT INTO posthog.person_distinct_ids VALUES
    (1, 'anon-1', 'pa'), (1, 'alice', 'pa'), (1, 'bob', 'pb'), (1, 'zed', 'pz'),
    (2, 'alice', 'qa'), (2, 'bob', 'qb'), (2, 'anon-1', 'qb');

INSERT INTO posthog.feature_flags VALUES
    (1, 10, 'new-checkout', 'New checkout', true, '2024-03-01 00:00:00+00', '{}'),
    (2, 20, 'new-checkout', 'New checkout', true, '2024-03-01 00:00:00+00', '{}');

INSERT INTO posthog.events (project_id, uuid, event, distinct_id, person_id, "timestamp", properties, session_id)
VALUES
    (1, 'e01', '$pageview', 'anon-1', NULL, '2024-03-04 10:00:00+00', '{"$current_url": "https://ex.com/"}', 's1'),
    (1, 'e02', 'signed_up', 'anon-1', NULL, '2024-03-04 10:05:00+00', '{}', 's1'),
    (1, 'e03', '$pageview', 'alice', 'pa', '2024-03-04 10:20:00+00',
        '{"$current_url": "https://ex.com/pricing?ref=x", "$browser": "Firefox"}', 's1'),
    (1, 'e04', '$pageview', 'bob', 'stale', '2024-03-05 12:00:00+00', '{"$current_url": "https://ex.com/"}', 's2'),
    (1, 'e05', '$feature_flag_called', 'bob', 'stale', '2024-03-05 12:30:00+00',
        '{"$feature_flag": "new-checkout", "$feature_flag_response": "test"}', 's2'),
    (1, 'e06', '$feature_flag_called', 'alice', 'pa', '2024-03-06 09:00:00+00',
        '{"$feature_flag": "new-checkout", "$feature_flag_response": "control"}', 's3'),
    (1, 'e13', '$feature_flag_called', 'alice', 'pa', '2024-03-06 09:30:00+00',
        '{"$feature_flag": "new-checkout", "$feature_flag_response": "control"}', 's3'),
    (1, 'e07', 'purchase', 'anon-9', 'pc', '2024-03-10 04:00:00+00', '{}', 's4'),
    (1, 'e08', '$pageview', 'anon-9', 'pc', '2024-03-10 04:30:00+00',
        '{"$current_url": "https://ex.com/pricing", "$pathname": "/pricing"}', 's4'),
    (1, 'e09', 'signed_up', 'anon-9', 'pc', '2024-03-10 05:00:00+00', '{}', 's4'),
    (1, 'e10', 'purchase', 'alice', 'pa', '2024-03-11 03:30:00+00', '{}', 's5'),
    (1, 'e11', '$pageview', 'bob', NULL, '2024-03-11 04:30:00+00', '{"$current_url": "https://ex.com/docs#intro"}', 's6'),
    (1, 'e14', '$pageview', 'bob', NULL, '2024-03-18 20:00:00+00', '{"$current_url": "https://ex.com/"}', NULL),
    (1, 'e15', 'signed_up', 'bob', NULL, '2024-03-19 08:00:00+00', '{}', NULL),
    (1, 'e16', '$autocapture', 'ghost', NULL, '2024-03-19 08:05:00+00', '{}', NULL),
    (1, 'e17', 'purchase', 'bob', NULL, '2024-03-20 08:00:00+00', '{}', 's8'),
    (2, 'e21', '$pageview', 'alice', 'pa', '2024-03-04 11:00:00+00', '{"$current_url": "https://beta.io/"}', 's1'),
    (2, 'e22', 'purchase', 'alice', 'pa', '2024-03-04 11:30:00+00', '{}', 's1'),
    (2, 'e23', '$pageview', 'anon-1', NULL, '2024-03-05 09:00:00+00', '{"$current_url": "https://beta.io/app?x=1"}', 't2'),
    (2, 'e24', 'signed_up', 'bob', NULL, '2024-03-05 09:10:00+00', '{}', 't2'),
    (2, 'e25', '$feature_flag_called', 'bob', NULL, '2024-03-13 09:00:00+00',
        '{"$feature_flag": "new-checkout", "$feature_flag_response": true}', 't3');

INSERT INTO posthog.sessions VALUES
    (1, 's1', 'anon-1', '2024-03-04 10:00:00+00', '2024-03-04 10:20:00+00', 1200,
        'https://ex.com/', 'https://ex.com/pricing?ref=x', 2, 0, false, 'Direct'),
    (1, 's2', 'bob', '2024-03-05 12:00:00+00', '2024-03-05 12:30:00+00', 1800,
        'https://ex.com/', 'https://ex.com/', 1, 0, false, 'Organic Search'),
    (1, 's3', 'alice', '2024-03-06 09:00:00+00', '2024-03-06 09:30:00+00', 1800, NULL, NULL, 0, 0, NULL, 'Direct'),
    (1, 's4', 'anon-9', '2024-03-10 04:00:00+00', '2024-03-10 05:00:00+00', 3600,
        'https://ex.com/pricing', 'https://ex.com/pricing', 1, 0, false, 'Paid Search'),
    (1, 's5', 'alice', '2024-03-11 03:30:00+00', '2024-03-11 03:30:00+00', 0, NULL, NULL, 0, 0, NULL, 'Direct'),
    (1, 's6', 'bob', '2024-03-11 04:30:00+00', '2024-03-11 04:30:00+00', 0,
        'https://ex.com/docs#intro', 'https://ex.com/docs#intro', 1, 0, true, 'Organic Search'),
    (1, 's9', 'zed', '2024-03-11 15:00:00+00', '2024-03-11 15:06:40+00', 400,
        'https://ex.com/', 'https://ex.com/docs', 3, 1, false, 'Organic Search'),
    (1, 's8', 'bob', '2024-03-20 08:00:00+00', '2024-03-20 08:00:00+00', 0, NULL, NULL, 0, 0, NULL, 'Email'),
    (2, 's1', 'alice', '2024-03-04 11:00:00+00', '2024-03-04 11:30:00+00', 1800,
        'https://beta.io/', 'https://beta.io/', 1, 0, false, 'Referral'),
    (2, 't2', 'anon-1', '2024-03-05 09:00:00+00', '2024-03-05 09:10:00+00', 600,
        'https://beta.io/app?x=1', 'https://beta.io/app?x=1', 1, 0, false, 'Direct'),
    (2, 't4', 'bob', '2024-03-05 10:00:00+00', '2024-03-05 10:00:00+00', 0,
        'https://beta.io/', 'https://beta.io/', 1, 0, true, 'Direct'),
    (2, 't3', 'bob', '2024-03-13 09:00:00+00', '2024-03-13 09:00:00+00', 0, NULL, NULL, 0, 0, NULL, NULL);

INSERT INTO posthog.cohorts VALUES
    (1, 101, 'Paying customers', false, 2, '2024-03-20 00:00:00+00', false, '1710892800.1'),
    (1, 102, 'Beta testers', true, 3, NULL, false, '1710892800.1'),
    (1, 103, 'Churned', false, 0, '2024-03-20 00:00:00+00', false, '1710892800.1'),
    (1, 104, 'Old import', true, 1, NULL, true, '1710892800.1'),
    (2, 101, 'Beta users', false, 1, '2024-03-13 12:00:00+00', false, '1710892800.1');

INSERT INTO posthog.cohort_people VALUES
    (1, 101, 'pa', NULL), (1, 101, 'pb', NULL),
    (1, 102, 'pa', NULL), (1, 102, 'pc', NULL), (1, 102, 'pz', NULL),
    (1, 104, 'pb', NULL),
    (1, 105, 'pa', NULL),
    (2, 101, 'qa', NULL), (2, 101, 'qb', NULL);
