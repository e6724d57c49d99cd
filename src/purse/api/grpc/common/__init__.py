"""What every gRPC contract shares: the calls' authentication and error mapping, the
error -> status table, the interceptors (metrics, request guard, abort release) and the
protobuf <-> domain mapping of the common messages."""
