"""Intake: receives agent reports, keeps the fleet's view, serves it to the controller."""
