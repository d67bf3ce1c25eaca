INSERT INTO "Users" ("id", "Name", "select") VALUES (3, 'Cid', 'x') RETURNING "Name", "select"
