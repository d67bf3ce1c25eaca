INSERT INTO "users" ("age", "name", "email") VALUES ($1, $2, $3) ON CONFLICT ("email") DO UPDATE SET "age" = "excluded"."age", "name" = "excluded"."name" RETURNING "id"
