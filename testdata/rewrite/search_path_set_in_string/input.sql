SET search_path = other, public; UPDATE items SET label = 'changed' WHERE id = 1
