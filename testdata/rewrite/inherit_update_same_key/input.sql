UPDATE vehicles SET wheels = wheels + 1 WHERE name <> 'car'
