INSERT INTO team_members (team_id, user_id, role) VALUES (1, 2, 'owner'), (2, 4, 'member') ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role
