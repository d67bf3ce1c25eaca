WITH src (n, e) AS (VALUES ('Hal', 'hal@example.com'), ('Ida', NULL)) INSERT INTO users (name, email) SELECT n, e FROM src RETURNING id
