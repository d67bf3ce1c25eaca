INSERT INTO a VALUES (4, 'four'); SELECT count(*) AS n FROM a
