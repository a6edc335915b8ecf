"""Random search over any space's choice vector (`search.adapter: random`)."""
