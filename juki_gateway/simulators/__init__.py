"""Simulated client roles: the existing system, the linkage system and the provision network."""
