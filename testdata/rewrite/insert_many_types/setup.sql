CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE things (
    id int PRIMARY KEY,
    big bigint, price numeric(10,2), ratio double precision, active bool, seen timestamptz, day date,
    span interval, blob bytea, data jsonb, doc json, tags text[], mood mood, code varchar(5), ch char(3)
);
INSERT INTO things VALUES (1, 9007199254740993, 1.50, 0.1, true, '2024-01-01 10:00:00+00', '2024-01-01',
    '1 day 02:00', '\x0102', '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": 2}', '{a,"b c"}', 'ok', 'ab', 'x');
