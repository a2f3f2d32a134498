"""The test kit: helpers shared by the tests and the benchmarks, real parts only.

- ``sync``         a publisher with Ed25519 keys, manifests, media, HTTP sources that misbehave;
- ``player``       a board's database with an activated manifest, images, Xvfb;
- ``status``       the reference source server on 127.0.0.1 (uvicorn in a thread), waiting
                   helpers, ASGI middleware for tests;
- ``reliability``  the box's two real processes, power cuts, network cuts, disk faults;
- ``postgres``     a throwaway PostgreSQL cluster on 127.0.0.1 (the ``postgres`` and
                   ``pg_dsn`` fixtures of tests/conftest.py).
- ``previous_release``  v0.1.0 (commit 8161ee3) extracted from git and run as processes:
  its board and its server beside this tree's ``eboard serve-source``, over HTTP only.

Import a module of the kit (``from tests.kit.sync import Publisher``); ``tests`` is a
package, so the tests, ``python -m bench`` and the fuzzers find it from the project root
without editing ``sys.path``.
"""
