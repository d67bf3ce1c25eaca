INSERT INTO teams AS t (name, region) VALUES ('a', 'r5'), ('b', 'r6') ON CONFLICT (name) DO UPDATE SET region = excluded.region, hits = t.hits + 1 WHERE t.name = 'b' RETURNING t.id, t.region
