INSERT INTO events VALUES (1, '2024-03-01', 'signup', '{"plan": "pro"}') ON CONFLICT (id, day) DO UPDATE SET payload = excluded.payload
