CREATE TABLE events (id int NOT NULL, day date NOT NULL, kind text NOT NULL, payload jsonb, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events VALUES (1, '2024-03-01', 'signup', '{"plan": "free"}'), (2, '2024-06-01', 'login', NULL), (3, '2025-02-01', 'login', NULL);
