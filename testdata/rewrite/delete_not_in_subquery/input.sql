DELETE FROM products WHERE id NOT IN (SELECT product_id FROM order_lines) AND category <> 'food'
