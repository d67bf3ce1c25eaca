INSERT INTO team_members (team_id, user_id) VALUES (2, 2), (2, 3)
