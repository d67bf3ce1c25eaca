INSERT INTO "users" AS "u" ("id", "name") VALUES (DEFAULT, 'x') RETURNING "u"."id"
