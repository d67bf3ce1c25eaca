INSERT INTO team_members (team_id, user_id, role) VALUES (2, 3, 'guest')
