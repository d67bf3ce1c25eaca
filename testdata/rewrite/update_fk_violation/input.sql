UPDATE products SET category = 'nope' WHERE id = 1
