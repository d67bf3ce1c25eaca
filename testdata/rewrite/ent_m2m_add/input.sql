INSERT INTO "group_users" ("group_id", "user_id") VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING
