DELETE FROM products AS p WHERE EXISTS (SELECT 1 FROM categories c WHERE c.name = p.category AND c.discount > 0.06) AND NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.product_id = p.id)
