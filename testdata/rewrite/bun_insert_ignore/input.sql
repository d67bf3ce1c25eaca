INSERT INTO "users" AS "u" ("id", "name", "email", "deleted_at") VALUES (2, 'x', 'e', DEFAULT), (3, 'c', 'c@x', DEFAULT) ON CONFLICT DO NOTHING
