UPDATE "users" SET "age"=age + $1,"updated_at"=$2 WHERE age > $3 AND "users"."deleted_at" IS NULL
