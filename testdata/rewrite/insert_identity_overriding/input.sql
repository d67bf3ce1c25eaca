INSERT INTO tickets (id, title, status) OVERRIDING SYSTEM VALUE VALUES (50, 'Manual', DEFAULT)
