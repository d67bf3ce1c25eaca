UPDATE tickets SET title = 'First ticket' WHERE id = 1 RETURNING title_len
