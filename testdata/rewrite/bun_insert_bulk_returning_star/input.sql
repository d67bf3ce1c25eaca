INSERT INTO "users" ("id", "name", "email", "deleted_at") VALUES (DEFAULT, 'c', '', DEFAULT), (DEFAULT, 'd', '', DEFAULT) RETURNING *
