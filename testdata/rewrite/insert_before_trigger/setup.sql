CREATE TABLE articles (id int PRIMARY KEY, title text NOT NULL, slug text, version int NOT NULL DEFAULT 0);
CREATE FUNCTION articles_normalize() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF btrim(NEW.title) = '' THEN
        RETURN NULL;
    END IF;
    NEW.title := btrim(NEW.title);
    NEW.slug := lower(replace(NEW.title, ' ', '-'));
    NEW.version := NEW.version + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER articles_normalize BEFORE INSERT OR UPDATE ON articles FOR EACH ROW EXECUTE FUNCTION articles_normalize();
INSERT INTO articles (id, title) VALUES (1, 'Hello World');
