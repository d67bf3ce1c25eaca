UPDATE stock SET qty = qty - 1 WHERE sku = 'A-1' AND qty > 0
