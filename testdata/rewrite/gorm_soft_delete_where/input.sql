UPDATE "users" SET "deleted_at"=$1 WHERE name = $2 AND "users"."deleted_at" IS NULL
