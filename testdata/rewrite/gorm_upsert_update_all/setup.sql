CREATE TABLE users (id bigserial PRIMARY KEY, name text, email text, age bigint,
    created_at timestamptz, updated_at timestamptz, deleted_at timestamptz);
CREATE INDEX idx_users_deleted_at ON users (deleted_at);
CREATE TABLE products (code text PRIMARY KEY, name text, price bigint);
INSERT INTO users (name, email, age, created_at, updated_at) VALUES
    ('Al', 'al@example.com', 30, '2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00'),
    ('Bea', 'bea@example.com', 40, '2024-01-02 00:00:00+00', '2024-01-02 00:00:00+00');
INSERT INTO products VALUES ('p1', 'Pen', 2), ('p2', 'Ink', 5);
