INSERT INTO teams (name, region) VALUES ('a', 'r0') ON CONFLICT (name) DO UPDATE SET region = excluded.region
