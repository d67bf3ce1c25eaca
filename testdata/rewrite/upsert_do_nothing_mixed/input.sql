INSERT INTO teams (name) VALUES ('a'), ('c') ON CONFLICT (name) DO NOTHING
