CREATE TABLE "Users" (id int PRIMARY KEY, "Name" text, "select" text);
CREATE TABLE users (id int PRIMARY KEY, name text);
INSERT INTO "Users" VALUES (1, 'Ann', 's'), (2, 'Ben', 't');
INSERT INTO users VALUES (1, 'ann');
