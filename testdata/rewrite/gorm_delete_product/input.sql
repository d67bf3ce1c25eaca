DELETE FROM "products" WHERE "products"."code" = $1
