INSERT INTO teams AS t (name, region) VALUES ('a', 'r5') ON CONFLICT (name) DO UPDATE SET region = excluded.region WHERE t.region <> 'r0'
