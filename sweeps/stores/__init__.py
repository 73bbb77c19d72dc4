"""Where studies and runs live: store URLs and their one-line errors, the preflight every command runs before its
first write, journal integrity, heartbeats, the budget lock, relocation of copied folders, redaction of secrets,
optional extras, and the Optuna and MLflow adapters (the only modules allowed their private APIs)."""
