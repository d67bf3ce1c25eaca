CREATE SEQUENCE ticket_no START 100;
CREATE TABLE tickets (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL,
    status text NOT NULL DEFAULT 'open',
    number int NOT NULL DEFAULT nextval('ticket_no'),
    title_len int GENERATED ALWAYS AS (length(title)) STORED,
    opened date NOT NULL DEFAULT DATE '2024-01-01'
);
INSERT INTO tickets (title) VALUES ('First');
