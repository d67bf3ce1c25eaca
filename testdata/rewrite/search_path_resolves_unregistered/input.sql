UPDATE items SET label = 'changed' WHERE id = 1
