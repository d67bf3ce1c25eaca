INSERT INTO teams (name, region) VALUES ('a', 'r1'), ('new1', 'r2'), ('b', 'r0'), ('new2', NULL) ON CONFLICT (name) DO UPDATE SET region = excluded.region RETURNING id, name
