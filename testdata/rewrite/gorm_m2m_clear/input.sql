DELETE FROM "team_members" WHERE "team_members"."user_id" = $1
