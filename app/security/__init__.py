"""The security layer: mTLS identity, network policy, roles, rate limits and the audit trail.

``install_security`` (in ``app.security.middleware``) puts the whole stack on an app;
``server_config`` (in ``app.security.serving``) makes uvicorn serve it over mTLS.
"""
