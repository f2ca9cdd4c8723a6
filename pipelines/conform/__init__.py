"""Conform: map each source's codes to service, journey and stage, and shape the facts."""
