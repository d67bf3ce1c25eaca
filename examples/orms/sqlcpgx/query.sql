-- name: CreateAuthor :one
INSERT INTO authors (name, bio, api_token) VALUES ($1, $2, $3)
RETURNING id, name, bio;

-- name: GetAuthor :one
SELECT id, name, bio FROM authors WHERE id = $1;

-- name: ListAuthors :many
SELECT id, name, bio FROM authors ORDER BY id;

-- name: UpdateAuthorBio :exec
UPDATE authors SET bio = $2, updated_at = now() WHERE id = $1;

-- name: RotateToken :exec
UPDATE authors SET api_token = $2 WHERE id = $1;

-- name: CapitalizeAuthors :execrows
UPDATE authors SET name = upper(name), updated_at = now() WHERE name LIKE $1;

-- name: DeleteAuthor :exec
DELETE FROM authors WHERE id = $1;

-- name: AddBooks :copyfrom
INSERT INTO books (author_id, isbn, title, price) VALUES ($1, $2, $3, $4);

-- name: RepriceBook :batchexec
UPDATE books SET price = $2 WHERE isbn = $1;

-- name: RenameBook :batchone
UPDATE books SET title = $2 WHERE isbn = $1 RETURNING id, title;

-- name: RepriceBooks :many
UPDATE books SET price = price * sqlc.arg(factor)::numeric
WHERE author_id = sqlc.arg(author_id)
RETURNING *;

-- name: ListBooks :many
SELECT * FROM books ORDER BY id;
