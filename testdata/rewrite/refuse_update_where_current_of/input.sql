UPDATE users SET name = 'x' WHERE CURRENT OF c
