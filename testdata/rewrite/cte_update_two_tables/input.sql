WITH c AS (UPDATE categories SET discount = discount + 0.05 WHERE name = 'toys' RETURNING name) UPDATE products SET price = price - 1 WHERE category IN (SELECT name FROM c) RETURNING id
