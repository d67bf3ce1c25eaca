TRUNCATE scratch
