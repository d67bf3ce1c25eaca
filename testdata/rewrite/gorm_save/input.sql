UPDATE "users" SET "name"=$1,"email"=$2,"age"=$3,"created_at"=$4,"updated_at"=$5,"deleted_at"=$6 WHERE "users"."deleted_at" IS NULL AND "id" = $7
