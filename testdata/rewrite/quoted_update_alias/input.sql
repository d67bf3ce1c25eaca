UPDATE "Users" AS "U" SET "Name" = lower("U"."Name") WHERE "U"."select" = 's'
