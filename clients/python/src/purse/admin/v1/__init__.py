"""Generated control panel contract (purse.admin.v1); regenerate with `make protos`."""
