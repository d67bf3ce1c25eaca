UPDATE products p SET price = p.price * (1 - c.discount) FROM categories c WHERE c.name = p.category AND c.discount > 0 RETURNING p.id, p.price, c.discount
