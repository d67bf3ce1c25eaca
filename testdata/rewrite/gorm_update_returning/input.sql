UPDATE "products" SET "price"=price * 2 WHERE price < $1 RETURNING *
