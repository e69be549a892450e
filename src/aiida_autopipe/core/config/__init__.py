"""The two-tier configuration: user input.yaml -> full config (exec_config_dump.yaml)."""
