UPDATE users SET last_login = '2024-05-06 07:08:09+00'
