"""The launchers: the CLI, the embedded stack, the process topology and the Envoy runner.

They sit on top of everything else and are imported by nothing but each other and the
clients' benchmarks, so that a service never depends on how it is started.
"""
