INSERT INTO articles (id, title) VALUES (2, '  Second Post ')
