INSERT INTO "users" ("id", "name", "email", "deleted_at") VALUES (DEFAULT, 'x', 'e', DEFAULT) RETURNING "id"
