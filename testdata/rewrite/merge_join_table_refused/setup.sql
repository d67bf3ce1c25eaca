CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE users (id int PRIMARY KEY, name text);
CREATE TABLE team_members (team_id int REFERENCES teams, user_id int REFERENCES users, role text NOT NULL DEFAULT 'member',
    PRIMARY KEY (team_id, user_id));
INSERT INTO teams VALUES (1, 't1'), (2, 't2');
INSERT INTO users VALUES (1, 'u1'), (2, 'u2'), (3, 'u3'), (4, 'u4');
INSERT INTO team_members VALUES (1, 1, 'member'), (1, 2, 'admin'), (2, 1, 'member');
