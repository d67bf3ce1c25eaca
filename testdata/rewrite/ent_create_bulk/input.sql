INSERT INTO "users" ("age", "name", "email") VALUES ($1, $2, $3), ($4, $5, $6) RETURNING "id"
