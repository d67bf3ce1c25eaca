CREATE SCHEMA app;
CREATE TABLE app.projects (id int PRIMARY KEY, name text NOT NULL, budget numeric(12,2));
CREATE TABLE public.projects (id int PRIMARY KEY, name text);
INSERT INTO app.projects VALUES (1, 'Apollo', 1000.50), (2, 'Gemini', NULL);
INSERT INTO public.projects VALUES (1, 'public one');
