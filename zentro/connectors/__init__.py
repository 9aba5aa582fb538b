"""Connectors to the reasoning and robot (automation) backends: status probes and streaming proxies
behind the outgoing-address policy."""
