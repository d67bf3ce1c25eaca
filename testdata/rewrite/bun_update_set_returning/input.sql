UPDATE "users" AS "u" SET name = 'y' WHERE "u"."deleted_at" IS NULL AND ("u"."id" = 2) RETURNING id
