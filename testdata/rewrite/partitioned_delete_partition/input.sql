DELETE FROM events_2024 WHERE kind = 'login' RETURNING id
