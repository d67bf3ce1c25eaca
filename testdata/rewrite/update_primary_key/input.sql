UPDATE products SET id = id + 100 WHERE id = 4 RETURNING id
