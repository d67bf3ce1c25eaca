INSERT INTO "app"."projects" (id, name) VALUES (3, 'Mercury') RETURNING *
