INSERT INTO "products" ("code","name","price") VALUES ($1,$2,$3),($4,$5,$6) ON CONFLICT DO NOTHING
