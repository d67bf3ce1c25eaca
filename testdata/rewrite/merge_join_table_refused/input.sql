MERGE INTO team_members m USING (VALUES (1, 2)) s (team_id, user_id) ON m.team_id = s.team_id AND m.user_id = s.user_id WHEN NOT MATCHED THEN INSERT VALUES (s.team_id, s.user_id)
