"""gRPC servicers, mapping, the error table and interceptors."""
