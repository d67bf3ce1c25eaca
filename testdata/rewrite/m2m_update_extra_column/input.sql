UPDATE team_members SET role = 'lead' WHERE user_id = 1
