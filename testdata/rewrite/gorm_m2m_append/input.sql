INSERT INTO "team_members" ("user_id","team_id") VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING
