UPDATE products AS p SET name = upper(p.name) WHERE p.price < 5 RETURNING p.name
