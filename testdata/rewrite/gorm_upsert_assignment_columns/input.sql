INSERT INTO "products" ("code","name","price") VALUES ($1,$2,$3) ON CONFLICT ("code") DO UPDATE SET "price"="excluded"."price"
