WITH users AS (DELETE FROM users WHERE id = 3) SELECT 1 AS one
