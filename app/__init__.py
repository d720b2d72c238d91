"""Enclave's service: API, security, jobs, dispatch, storage, audit, settings, worker."""
