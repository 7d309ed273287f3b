"""The closed loop on one machine (``make demo``).

Owns the simulator (``simulator/``), the demo scenario and the processes it
starts, and its summary. ``run.run_loop`` is the one demo: ``stop_after="train"``
(``edgeloop demo --train-only``) stops after step ① and ``first_model``
summarises what it trained. May import every stage; nothing imports it but the CLI.
Import-light on purpose: ``edgeloop.demo.simulator`` is used by ``edgeloop data
simulate`` without loading the loop.
"""
