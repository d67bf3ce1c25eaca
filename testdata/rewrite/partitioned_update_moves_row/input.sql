UPDATE events SET day = '2025-01-15' WHERE id = 2
