WITH plain_log AS (INSERT INTO plain_log VALUES (1, 'x')) UPDATE a SET v = 'y' WHERE id = 1
