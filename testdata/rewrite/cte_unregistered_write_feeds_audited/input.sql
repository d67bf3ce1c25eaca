WITH l AS (INSERT INTO plain_log VALUES (1, 'x') RETURNING id) UPDATE a SET v = 'logged' WHERE id IN (SELECT id FROM l)
