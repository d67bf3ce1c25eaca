INSERT INTO countries VALUES ('DE', 'Germany', NULL), ('ES', 'Spain', 48000000)
