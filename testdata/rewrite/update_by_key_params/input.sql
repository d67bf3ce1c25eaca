UPDATE products SET price = $1, stock = $2 WHERE id = $3
