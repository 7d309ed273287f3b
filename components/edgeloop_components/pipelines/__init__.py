"""KFP v2 pipelines; ``compile.py`` writes their IR YAML."""
