"""The semantic layer: Omni-format YAML models compiled to SQL. Pure: no network, no engines."""
