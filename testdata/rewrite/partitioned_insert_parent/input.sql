INSERT INTO events VALUES (4, '2025-03-01', 'logout', NULL), (5, '2024-12-31', 'signup', '{}')
