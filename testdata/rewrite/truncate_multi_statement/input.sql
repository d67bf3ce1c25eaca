DELETE FROM users WHERE id = 1; TRUNCATE TABLE ONLY users -- all gone
; INSERT INTO users (name) VALUES ('Neo')
