UPDATE products SET stock = 0 WHERE id IN (SELECT product_id FROM order_lines WHERE order_id = $1)
