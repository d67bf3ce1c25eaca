DELETE FROM "users" AS "u" WHERE ("u"."id" = 1)
