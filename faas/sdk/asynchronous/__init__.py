"""``globus_compute_sdk.sdk.asynchronous``."""
