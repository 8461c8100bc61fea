"""The control plane for test suites: what `/_emulator/*` sets for the calling key's tenant, and what it does to
that tenant's `/v1` requests.

- `middleware`: fault rules and management rate limits applied to `/v1` requests before their route;
  `cache`: each tenant's rules and limits as the middleware reads them.
- `faults`, `ratelimits`, `latency`: the rules, the limits (management requests, model calls) and the
  latency profile of model calls.
- `scripts`: queuing scripted model turns (the model plays them: `emulator.runs.scripts`).
- `clocks`: moving a tenant's clock, and the retention sweeps; `tenant_reset`: deleting everything of a
  tenant.

The routes are `emulator.api.control`.
"""
