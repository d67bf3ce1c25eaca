UPDATE products p SET category = NULL WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.product_id = p.id)
