"""sopdsl on Temporal: shards of the engine as durable workflows, for communities that outgrow one database.

`worker.py` runs the workflows and the activities that call the executors, `workflow.py` is a
shard's workflow, `client.py` forwards events from `sopdsl run --engine temporal://...` to them.
Needs the optional extra: `pip install 'sopdsl[temporal]'`. Nothing is imported here, so the
workflow sandbox can import this package cheaply.
"""
