INSERT INTO team_members (team_id, user_id) VALUES (1, 1), (2, 4) ON CONFLICT DO NOTHING
