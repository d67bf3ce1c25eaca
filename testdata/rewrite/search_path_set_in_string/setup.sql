CREATE SCHEMA other;
CREATE TABLE public.items (id int PRIMARY KEY, label text);
CREATE TABLE other.items (id int PRIMARY KEY, label text);
INSERT INTO public.items VALUES (1, 'pub');
INSERT INTO other.items VALUES (1, 'oth');
