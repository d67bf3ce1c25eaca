UPDATE ONLY vehicles SET wheels = 3 WHERE id = 1
