INSERT INTO team_members (team_id, user_id) VALUES (1, 1) ON CONFLICT (team_id, user_id) DO UPDATE SET user_id = 3
