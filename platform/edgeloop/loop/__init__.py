"""The loop service: triggers -> retraining -> gates, run by itself as a Deployment.

``edgeloop loop run`` evaluates every trigger kind on an interval, starts one
retraining per burst of triggers (locally or on Kubeflow Pipelines), follows
the run to its end and records it. One replica leads (a lock row in the shared
database); runs are kept in the same database so a restarted service resumes
following the run it started instead of starting another.
"""
