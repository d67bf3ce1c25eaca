DELETE FROM products p USING categories c WHERE c.name = p.category AND c.name = 'food' RETURNING p.id, c.discount
