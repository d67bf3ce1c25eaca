DELETE FROM countries WHERE code = $1 RETURNING name
