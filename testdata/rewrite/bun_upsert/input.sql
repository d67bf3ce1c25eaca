INSERT INTO "users" AS "u" ("id", "name", "email", "deleted_at") VALUES (1, 'x', 'e', DEFAULT) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name RETURNING *
