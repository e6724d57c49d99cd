"""AdminService: the servicer and the mapping of program rules."""
