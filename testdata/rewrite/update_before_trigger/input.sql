UPDATE articles SET title = 'Hello Again' WHERE id = 1
