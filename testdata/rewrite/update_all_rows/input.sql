UPDATE products SET stock = stock + 1
