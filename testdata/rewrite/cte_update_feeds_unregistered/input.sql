WITH u AS (UPDATE a SET v = upper(v) RETURNING id, v) INSERT INTO plain_log SELECT id, v FROM u
