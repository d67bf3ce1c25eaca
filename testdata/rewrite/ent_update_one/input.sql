UPDATE "users" SET "name" = $1 WHERE "id" = $2 RETURNING "id", "age", "name", "email"
