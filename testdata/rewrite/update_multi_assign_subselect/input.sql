UPDATE products SET (price, stock) = (SELECT p2.price, p2.stock FROM products p2 WHERE p2.id = 1) WHERE id = 2
