"""Regularized (aging) evolution over any space's choice vector (`search.adapter: evolution`)."""
