INSERT INTO "users" ("age", "name", "email") VALUES ($1, $2, $3) RETURNING "id"
