DELETE FROM "users" WHERE "users"."age" < $1
