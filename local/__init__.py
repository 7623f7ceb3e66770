"""The tooling around the product, one package per purpose:

- local/stack/: the AWS side on one machine (the offline stack: DynamoDB Local, moto, template.yaml's resources, the
  HTTP front door, the queue pollers, the scheduler, the console's origin, the served API docs);
- local/cli/: `python -m local COMMAND` (up, down, token, status, link, sync, export, verify, demo, ...);
- local/chaos/: the chaos driver, its seeded plans and checks, and the worker process that dies and misbehaves;
- local/xero_emulator/: Xero, offline (docs/xero-emulator.md);
- local/gc_pace.py: how often the tooling's long-lived processes collect garbage.
"""
