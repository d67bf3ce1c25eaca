UPDATE plain_log SET v = 'z'
