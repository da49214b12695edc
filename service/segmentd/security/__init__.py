"""Access control: API keys with scopes, checked by one server interceptor; TLS for the server.

    scopes.py       SCOPE_BY_METHOD: the scope every RPC needs (default-deny), the open services
    keys.py         making a key, hashing it, telling its id from its secret
    verifier.py     KeyVerifier: a presented key -> its scopes, cached for a bounded time
    interceptor.py  AuthInterceptor: UNAUTHENTICATED / PERMISSION_DENIED before any handler runs
    tls.py          the server's credentials from --tls-cert, --tls-key, --tls-client-ca
    exposure.py     the warnings a server logs at start when it is open to its network

The README's "Security" section says what an operator must switch on, and why.
"""
