"""Where studies and runs live: store URLs and their one-line errors, the MLflow store's client settings and probe,
the preflight every command runs before its first write, journal integrity, heartbeats, the budget lock, redaction
of secrets, optional extras, and the Optuna and MLflow adapters (the only modules allowed their private APIs)."""
