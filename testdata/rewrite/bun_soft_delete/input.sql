UPDATE "users" AS "u" SET "deleted_at" = '2024-05-06 07:08:09+00:00' WHERE "u"."deleted_at" IS NULL AND ("u"."id" = 1)
