UPDATE app.projects SET budget = coalesce(budget, 0) + 250 WHERE id = $1
