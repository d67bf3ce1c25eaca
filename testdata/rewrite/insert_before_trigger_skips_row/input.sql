INSERT INTO articles (id, title) VALUES (3, 'Kept'), (4, '   ')
