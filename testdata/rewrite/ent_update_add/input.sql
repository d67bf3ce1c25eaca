UPDATE "users" SET "age" = COALESCE("users"."age", 0) + $1 WHERE "users"."name" = $2
