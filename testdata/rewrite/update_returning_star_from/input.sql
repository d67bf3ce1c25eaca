UPDATE products p SET stock = p.stock + l.qty FROM order_lines l WHERE l.product_id = p.id AND l.order_id = 101 RETURNING *
