CREATE TABLE documents (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL, body jsonb, tags text[]);
INSERT INTO documents VALUES ('00000000-0000-0000-0000-000000000001', 'Readme', '{"v": 1, "k": "x"}', '{a,b}');
