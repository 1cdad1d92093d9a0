"""The runner and what runs a step: the part of Glacier that moves data.

- :mod:`glacier.run.runner`: walks the DAG for ``mode="local"`` and ``mode="cloud"``;
- :mod:`glacier.run.step`: one step, read, call, write atomically, wherever it runs;
- :mod:`glacier.run.protocol`: the side of the payload where a step runs (``handle``);
- :mod:`glacier.run.local`, :mod:`glacier.run.process`, :mod:`glacier.run.worker`: steps
  on this machine, in this process or in a worker process that can be stopped;
- :mod:`glacier.run.cache` and :mod:`glacier.run.history`: cache records and run records.
"""
