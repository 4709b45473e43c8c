"""Globus Compute's ``globus_compute_sdk.sdk`` module paths, so Globus code that imports from
them runs with ``globus_compute_sdk`` changed to ``faas`` (Globus's Executor guide imports
``ComputeFuture`` from ``globus_compute_sdk.sdk.executor``; its reference names
``globus_compute_sdk.sdk.shell_function.ShellFunction``). Each module here only re-exports
faas's own classes; nothing lives here.
"""
