"""PPO over any space's choice vector, DeepHyper style (`search.adapter: ppo`)."""
