INSERT INTO teams (name, region) SELECT name || '-x', 'rx' FROM teams UNION ALL SELECT 'a', 'rz' ON CONFLICT (name) DO UPDATE SET region = excluded.region
