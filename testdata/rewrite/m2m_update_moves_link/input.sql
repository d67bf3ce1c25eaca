UPDATE team_members SET user_id = 4 WHERE team_id = 1 AND user_id = 1
