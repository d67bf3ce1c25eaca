CREATE TABLE vehicles (id int PRIMARY KEY, name text NOT NULL, wheels int NOT NULL);
CREATE TABLE trucks (payload int, PRIMARY KEY (id)) INHERITS (vehicles);
INSERT INTO vehicles VALUES (1, 'bike', 2), (2, 'car', 4);
INSERT INTO trucks VALUES (1, 'big truck', 6, 1000);
