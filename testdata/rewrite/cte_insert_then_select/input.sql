WITH x AS (INSERT INTO a VALUES (9, 'nine'), (10, 'ten') RETURNING id) SELECT count(*) FROM x
