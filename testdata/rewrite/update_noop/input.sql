UPDATE products SET name = name WHERE category = 'toys'
