-- Fixed PostHog data for tests/test_sql_models.py and tests/test_report_html.py (expected answers are
-- written by hand in the tests: change this file and they must be recomputed by hand).
-- Project 1 "Acme" (America/New_York) spans the US DST change of 2024-03-10 07:00 UTC.
-- Project 2 "Beta" reuses the distinct ids alice, bob, anon-1 and the session id s1 for OTHER persons.
-- Person resolution, project 1: anon-1, alice -> pa; bob -> pb (events.person_id 'stale' ignored);
--   anon-9 unmapped -> events.person_id pc; ghost unmapped, no person_id -> 'ghost'. pz: no events.
-- Project 2: alice -> qa; bob, anon-1 -> qb.
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
