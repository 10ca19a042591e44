"""How the project talks to its Dagster instance: which instance, what it recorded, what to run.

Stages never import from here except `records` (reading their own provenance); the CLI and the
definitions use the rest.
"""
