UPDATE documents SET body = body || '{"w": 2}', tags = array_append(tags, 'c') WHERE id = '00000000-0000-0000-0000-000000000001'
