"""The site side: endpoint configuration, the daemon that scales blocks, and the worker pool."""
