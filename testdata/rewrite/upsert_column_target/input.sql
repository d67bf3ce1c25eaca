INSERT INTO teams (name, region) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET region = excluded.region RETURNING id, (xmax = 0) AS inserted
