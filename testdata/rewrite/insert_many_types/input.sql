INSERT INTO things VALUES (2, -1, 99.99, 1e-10, false, '2024-05-06 07:08:09.123456+02', '1999-12-31', '-3 hours', '\xdeadbeef', '[null, true]', '"str"', '{}', 'happy', 'abcde', 'yz')
