"""edgeloop control plane: settings, registry, rollout, intake, triggers, CLI.

Import-light: the CLI imports heavy libraries (mlflow, kfp, pandas) only inside
the commands that need them, so ``edgeloop --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
