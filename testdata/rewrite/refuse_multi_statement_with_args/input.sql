UPDATE users SET name = $1 WHERE id = 1; DELETE FROM users WHERE id = 2
