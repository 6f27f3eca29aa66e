"""Registry state -> deployed state: targets, adapters, the Lambda image recipe, templates."""
