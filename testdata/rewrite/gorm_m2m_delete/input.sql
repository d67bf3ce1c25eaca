DELETE FROM "team_members" WHERE "team_members"."user_id" = $1 AND "team_members"."team_id" = $2
