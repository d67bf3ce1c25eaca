UPDATE users SET pw = $1, last_login = $2 WHERE id = $3
