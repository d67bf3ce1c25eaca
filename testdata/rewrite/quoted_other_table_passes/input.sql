UPDATE users SET name = 'changed'
