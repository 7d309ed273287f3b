"""What every stage shares: settings, the error hierarchy, the hand-written file reader.

Imports no other edgeloop package.
"""
