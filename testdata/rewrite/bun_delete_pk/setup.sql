CREATE TABLE users (id bigserial PRIMARY KEY, name varchar, email varchar, deleted_at timestamptz);
INSERT INTO users (name, email) VALUES ('a', 'a@x'), ('b', 'b@x');
