COPY users (name) FROM STDIN
