UPDATE "users" SET "name"=$1,"age"=$2,"updated_at"=$3 WHERE "users"."deleted_at" IS NULL AND "id" = $4
