CREATE TABLE users (id bigserial PRIMARY KEY, name text);
CREATE TABLE teams (id bigserial PRIMARY KEY, name text);
CREATE TABLE team_members (user_id bigint REFERENCES users, team_id bigint REFERENCES teams, PRIMARY KEY (user_id, team_id));
INSERT INTO users (name) VALUES ('Al'), ('Bea');
INSERT INTO teams (name) VALUES ('t1'), ('t2'), ('t3');
INSERT INTO team_members VALUES (1, 1), (1, 2), (2, 1);
