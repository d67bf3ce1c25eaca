UPDATE products p SET stock = p.stock - 1 FROM order_lines l WHERE l.product_id = p.id
