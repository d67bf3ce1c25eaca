DELETE FROM "group_users" WHERE "group_id" = $1 AND "user_id" IN ($2, $3)
