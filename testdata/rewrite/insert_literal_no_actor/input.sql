INSERT INTO users (name) VALUES ('lit')
