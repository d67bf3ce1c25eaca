UPDATE "users" AS "u" SET "name" = 'x', "email" = 'e' WHERE "u"."deleted_at" IS NULL AND ("u"."id" = 1)
