INSERT INTO events_2025 (id, day, kind) VALUES (6, '2025-07-01', 'login')
