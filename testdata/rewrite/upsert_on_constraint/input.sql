INSERT INTO teams AS t (name) VALUES ('b') ON CONFLICT ON CONSTRAINT teams_name_key DO UPDATE SET hits = t.hits + 1
