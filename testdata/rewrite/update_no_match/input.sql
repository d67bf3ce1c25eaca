UPDATE products SET stock = 1 WHERE id = $1 RETURNING *
