"""Multi-user endpoints: a root process (the router) maps each task's identity, taken from the
transport, to a local account and hands the task to that user's ordinary single-user endpoint,
started on demand under the user's uid from the administrator's template.

Modules: ``files`` (what ``configure --multi-user`` writes, and loading it), ``mapping``
(identities -> accounts, Globus identity mapping), ``templates`` (schema + sandboxed render),
``spool`` (the file transport whose owner uid is the identity), ``user_endpoints`` (start, stop,
hand tasks to them with dropped privileges), ``lifecycle`` (sites, a user endpoint that outlives
its router, stopping the whole tree), ``router`` (the loop), ``audit`` (audit log, usage).
"""
