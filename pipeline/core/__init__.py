"""Plain data and vocabulary every stage shares: the Issue type, the form definition, the registry,
the configuration, text, number and cell helpers, atomic file writes. Imports nothing of the project
above it."""
