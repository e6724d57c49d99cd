"""PlatformService over gRPC."""
