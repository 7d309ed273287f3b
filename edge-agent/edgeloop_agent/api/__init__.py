"""HTTP adapter over :class:`~edgeloop_agent.service.ScoringService`."""
