"""Thin ``@dsl.component`` wrappers, one per step, over :mod:`edgeloop_components.tasks`."""
