CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL, population bigint);
INSERT INTO countries VALUES ('FR', 'France', 68000000), ('IT', 'Italy', 59000000);
