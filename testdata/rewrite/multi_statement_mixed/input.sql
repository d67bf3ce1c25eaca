UPDATE a SET v = 'x' WHERE id = 1; INSERT INTO plain_log VALUES (1, 'note'); DELETE FROM b WHERE id = 1
