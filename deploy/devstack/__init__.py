"""Local development stack: real Redis, NATS and Postgres on free ports, plus our own services.

`python -m devstack up` runs everything in one terminal; the test fixtures use the same classes, so what a
developer runs by hand and what the tests run cannot drift apart. The package imports nothing eagerly, so
`python -m devstack.tokens` stays fast and free of runpy warnings.
"""
