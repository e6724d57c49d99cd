"""Generated protobuf and gRPC code for package purse.v1 (do not edit; `make protos`)."""
