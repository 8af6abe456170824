"""Query results as Arrow: written once to IPC stream files, then served in Omni's formats."""
