INSERT INTO "users" ("name","email","age","created_at","updated_at","deleted_at") VALUES ($1,$2,$3,$4,$5,$6),($7,$8,$9,$10,$11,$12) RETURNING "id"
