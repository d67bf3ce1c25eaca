UPDATE users SET pw = 'pw-al' WHERE id = 1
